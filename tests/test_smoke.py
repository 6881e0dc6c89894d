"""The headless CLI starts without Textual, and the demo runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_headless_commands_do_not_import_textual() -> None:
    code = (
        "import sys; from auditor.cli import main\n"
        "for name in ['ingest', 'info', 'score', 'map', 'suspects', 'export', 'review']:\n"
        "    main.get_command(None, name)\n"
        "import auditor.ingest, auditor.mapstats, auditor.analysis, auditor.diagnosis, store\n"
        "import auditor.export\n"
        "assert 'textual' not in sys.modules, 'textual was imported'\n"
        "assert 'plotext' not in sys.modules, 'plotext was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_demo_prints_a_map(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--db", str(db), "--no-tui"])
    assert result.exit_code == 0, result.output
    assert "300 samples" in result.output
    assert "HighAvg" in result.output and "HighVar" in result.output
    # a second run adds nothing
    again = CliRunner().invoke(main, ["demo", "--db", str(db), "--no-tui"])
    assert "already ingested" in again.output
