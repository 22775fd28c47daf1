"""Audio event classification (Sec. 4, ESC-50): the clips (:mod:`~mamlib.aec.esc50`, :mod:`~mamlib.aec.sound_clips`,
:mod:`~mamlib.aec.synthetic`, :mod:`~mamlib.aec.data`), the frozen encoders (:mod:`~mamlib.aec.encoders`) and the
linear-head protocol (:mod:`~mamlib.aec.head`)."""
