"""Development aid, not part of the output: renders this template tree the way
``cafe24-oauth generate`` does (Jinja2 syntax, strict undefined, no auto-escaping), so the
generated module can be linted and tested here.

    python render_dev.py                # both variants into fresh temp dirs; prints their paths
    python render_dev.py OUT --no-webhooks

Files ending in ``.j2`` are rendered and lose the suffix; the others are copied byte for byte
(and must hold no template syntax); with the webhook handler off, every path with a
``webhooks`` directory is skipped. The migrations come from the runtime
(``crates/store/migrations/postgres``), as the generator writes them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import jinja2

HERE = Path(__file__).resolve().parent
# The contract's migrations: the generator writes the runtime's own files, byte for byte.
MIGRATIONS = HERE.parents[2] / "store" / "migrations" / "postgres"
SKIP_NAMES = {"render_dev.py", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".venv"}
DELIMITERS = ("{{", "{%", "{#")


def render(out: Path, *, webhooks: bool, scopes: list[str]) -> list[str]:
    # Source code, not HTML: the generator renders without auto-escaping too.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701
    context = {
        "app_name": "inventory-alert-app",
        "package_name": "inventory_alert_app",
        "scopes": scopes,
        "include_webhook_handler": webhooks,
        "generator_version": "dev",
    }
    written: list[str] = []
    for source in sorted(HERE.rglob("*")):
        relative = source.relative_to(HERE)
        if source.is_dir() or SKIP_NAMES.intersection(relative.parts):
            continue
        if not webhooks and "webhooks" in relative.parts[:-1]:
            continue
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".j2":
            target = target.with_suffix("")
            text = env.from_string(source.read_text(encoding="utf-8")).render(context)
            target.write_text(text, encoding="utf-8")
        else:
            data = source.read_bytes()
            if any(d.encode() in data for d in DELIMITERS):
                raise SystemExit(f"{relative}: template syntax in a file without .j2")
            shutil.copyfile(source, target)
        written.append(str(target.relative_to(out)))
    (out / "migrations").mkdir(parents=True, exist_ok=True)
    for sql in sorted(MIGRATIONS.glob("*.sql")):
        shutil.copyfile(sql, out / "migrations" / sql.name)
        written.append(f"migrations/{sql.name}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--no-webhooks", action="store_true")
    args = parser.parse_args()
    scopes = ["mall.read_product", "mall.write_product", "mall.read_store"]
    if args.out is not None:
        if args.out.exists():
            shutil.rmtree(args.out)
        render(args.out, webhooks=not args.no_webhooks, scopes=scopes)
        sys.stdout.write(f"{args.out}\n")
        return
    for webhooks in (True, False):
        out = Path(tempfile.mkdtemp(prefix=f"cafe24-python-{'webhooks' if webhooks else 'plain'}-"))
        files = render(out, webhooks=webhooks, scopes=scopes)
        sys.stdout.write(f"{out} ({len(files)} files, webhooks {'on' if webhooks else 'off'})\n")


if __name__ == "__main__":
    main()
