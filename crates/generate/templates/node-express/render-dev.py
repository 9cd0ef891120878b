"""Development aid, not part of the output: renders this template tree the way
``cafe24-oauth generate`` does (Jinja2 syntax, strict undefined, no auto-escaping), so the
generated module can be type-checked and tested here.

    python3 render-dev.py                   # both variants into fresh temp dirs; prints their paths
    python3 render-dev.py OUT               # webhooks on, into OUT
    python3 render-dev.py OUT --no-webhooks

Files ending in ``.j2`` are rendered and lose the suffix; the others are copied byte for byte
(and must hold no template variable or statement). With the webhook handler off, the webhook-only paths
(``webhooks/`` and ``test/webhooks.test.js``) are skipped. Rendering into an existing OUT
replaces everything in it except ``node_modules/`` and ``package-lock.json``, so one
``npm install`` serves many renders.
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
# The contract's migrations: the generator writes the runtime's own files, byte for byte.
MIGRATIONS = HERE.parents[2] / "store" / "migrations" / "postgres"
NOT_OUTPUT = {"render-dev.py"}
SKIP_DIRS = {"node_modules", "__pycache__"}
KEEP_IN_OUT = {"node_modules", "package-lock.json"}
WEBHOOK_ONLY = ("webhooks/", "test/webhooks.test.js")
DELIMITERS = ("{{", "{%", "{#")
# Plain files are copied as they are, so `{{` is fine there (JSDoc writes object types that way);
# a template variable or statement in one means a forgotten .j2 suffix.
FORGOTTEN_TEMPLATE = re.compile(rb"\{%|\{\{-?\s*(?:app_name|package_name|scopes|include_webhook_handler|generator_version)\b")


def webhook_only(path: str) -> bool:
    return any(path.startswith(rule) if rule.endswith("/") else path == rule for rule in WEBHOOK_ONLY)


def clear(out: Path) -> None:
    for entry in out.iterdir():
        if entry.name in KEEP_IN_OUT:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


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
        if source.is_dir() or SKIP_DIRS.intersection(relative.parts) or str(relative) in NOT_OUTPUT:
            continue
        path = relative.as_posix().removesuffix(".j2")
        if not webhooks and webhook_only(path):
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".j2":
            text = env.from_string(source.read_text(encoding="utf-8")).render(context)
            for delimiter in DELIMITERS:
                if delimiter in text:
                    raise SystemExit(f"{relative}: rendered output keeps {delimiter}")
            target.write_text(text, encoding="utf-8")
        else:
            data = source.read_bytes()
            if FORGOTTEN_TEMPLATE.search(data):
                raise SystemExit(f"{relative}: template syntax in a file without .j2")
            shutil.copyfile(source, target)
        written.append(path)
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
        args.out.mkdir(parents=True, exist_ok=True)
        clear(args.out)
        files = render(args.out, webhooks=not args.no_webhooks, scopes=scopes)
        sys.stdout.write(f"{args.out} ({len(files)} files, webhooks {'off' if args.no_webhooks else 'on'})\n")
        return
    for webhooks in (True, False):
        out = Path(tempfile.mkdtemp(prefix=f"cafe24-node-{'webhooks' if webhooks else 'plain'}-"))
        files = render(out, webhooks=webhooks, scopes=scopes)
        sys.stdout.write(f"{out} ({len(files)} files, webhooks {'on' if webhooks else 'off'})\n")


if __name__ == "__main__":
    main()
