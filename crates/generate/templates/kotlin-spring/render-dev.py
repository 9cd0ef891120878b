"""Development aid, not part of the output: renders this template tree the way
``cafe24-oauth generate`` does (Jinja2 syntax, strict undefined, no auto-escaping, the folder
name ``__package_path__`` replaced by the package's path), so the generated module can be built
and tested here.

    python3 render-dev.py                   # both variants into fresh temp dirs; prints their paths
    python3 render-dev.py OUT               # webhooks on, into OUT
    python3 render-dev.py OUT --no-webhooks
    python3 render-dev.py OUT --package com.acme.stock

Files ending in ``.j2`` are rendered and lose the suffix; the others are copied byte for byte
(and must hold no template syntax). With the webhook handler off, every path with a
``webhooks`` directory is skipped. Rendering into an existing OUT replaces everything in it
except ``target/`` (Maven's output), so a rebuild stays incremental.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import jinja2

HERE = Path(__file__).resolve().parent
NOT_OUTPUT = {"render-dev.py"}
SKIP_DIRS = {"target", "__pycache__"}
KEEP_IN_OUT = {"target"}
PACKAGE_DIR = "__package_path__"
DELIMITERS = ("{{", "{%", "{#")
FORGOTTEN_TEMPLATE = re.compile(rb"\{%|\{\{-?\s*(?:app_name|package|package_name|package_path|scopes|include_webhook_handler|generator_version)\b")


def clear(out: Path) -> None:
    for entry in out.iterdir():
        if entry.name in KEEP_IN_OUT:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# The contract's migrations: the generator writes the runtime's own files, byte for byte.
MIGRATIONS = Path(__file__).resolve().parents[2] / "store" / "migrations" / "postgres"
MIGRATIONS_DIR = Path("src/main/resources/db/cafe24")


def render(out: Path, *, webhooks: bool, package: str, scopes: list[str]) -> list[str]:
    # Source code, not HTML: the generator renders without auto-escaping too.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701
    package_path = package.replace(".", "/")
    context = {
        "app_name": "inventory-alert-app",
        "package_name": "inventory_alert_app",
        "package": package,
        "package_path": package_path,
        "scopes": scopes,
        "include_webhook_handler": webhooks,
        "generator_version": "dev",
    }
    written: list[str] = []
    for source in sorted(HERE.rglob("*")):
        relative = source.relative_to(HERE)
        if source.is_dir() or relative.name in NOT_OUTPUT or SKIP_DIRS.intersection(relative.parts):
            continue
        if not webhooks and "webhooks" in relative.parts[:-1]:
            continue
        target = out / str(relative).replace(PACKAGE_DIR, package_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".j2":
            target = target.with_suffix("")
            text = env.from_string(source.read_text(encoding="utf-8")).render(context)
            for delimiter in DELIMITERS:
                if delimiter in text:
                    raise SystemExit(f"{relative}: the rendered file keeps {delimiter}")
            target.write_text(text, encoding="utf-8")
        else:
            if FORGOTTEN_TEMPLATE.search(source.read_bytes()):
                raise SystemExit(f"{relative}: template syntax in a file without .j2")
            shutil.copyfile(source, target)
        written.append(str(target.relative_to(out)))
    (out / MIGRATIONS_DIR).mkdir(parents=True, exist_ok=True)
    for sql in sorted(MIGRATIONS.glob("*.sql")):
        shutil.copyfile(sql, out / MIGRATIONS_DIR / sql.name)
        written.append(str(MIGRATIONS_DIR / sql.name))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--no-webhooks", action="store_true")
    parser.add_argument("--package", default="com.example.inventoryalertapp")
    args = parser.parse_args()
    scopes = ["mall.read_product", "mall.write_product", "mall.read_store"]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        clear(args.out)
        files = render(args.out, webhooks=not args.no_webhooks, package=args.package, scopes=scopes)
        sys.stdout.write(f"{args.out} ({len(files)} files, webhooks {'off' if args.no_webhooks else 'on'})\n")
        return
    for webhooks in (True, False):
        out = Path(tempfile.mkdtemp(prefix=f"cafe24-kotlin-{'webhooks' if webhooks else 'plain'}-"))
        files = render(out, webhooks=webhooks, package=args.package, scopes=scopes)
        sys.stdout.write(f"{out} ({len(files)} files, webhooks {'on' if webhooks else 'off'})\n")


if __name__ == "__main__":
    main()
