"""`auditapp export verify` on hostile ZIPs (issue 11 item 9; ASVS 5.0 V5.2.3, archive
extraction bounded; V5.3.2, no path traversal from user-supplied file names): bombs and
huge declared sizes are refused before they are read, unsafe names and links are
refused, and every problem is one line and exit 1 — never a traceback, never a big temp
file, memory bounded."""

from __future__ import annotations

import io
import os
import stat
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from auditapp.services import export
from auditapp.services.export import verify

ROOT = Path(__file__).resolve().parents[2]
_RUN = """
import resource, sys
sys.argv = ["auditapp", "export", "verify", sys.argv[1]]
from auditapp.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
print(f"MAXRSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""


def _verify_in_child(path: Path, tmp_path: Path) -> tuple[int, str, int, list[Path]]:
    """Run the real command in a process of its own with an empty TMPDIR: exit code,
    output, peak RSS (KiB), and the files it left in TMPDIR."""
    scratch = tmp_path / f"tmp-{path.stem}"
    scratch.mkdir()
    env = os.environ | {
        "TMPDIR": str(scratch),
        "AUDITAPP_SECRET_KEY": "verify-test",
        "AUDITAPP_INSTANCE_PATH": str(tmp_path / "instance"),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    rss = int(next(ln.split()[1] for ln in output.splitlines() if ln.startswith("MAXRSS_KB")))
    return done.returncode, output, rss, list(scratch.rglob("*"))


def _zip(path: Path, members: dict[str, bytes], *, compress: bool = True) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _bomb(path: Path, name: str, mib: int) -> Path:
    """A ZIP whose one member inflates `mib` MiB of zeros from a few hundred KiB."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with (
        zipfile.ZipFile(path, "w", compresslevel=9) as zf,
        zf.open(info, "w", force_zip64=True) as f,
    ):
        block = bytes(1024 * 1024)
        for _ in range(mib):
            f.write(block)
    return path


def test_zip_bomb_is_refused_with_bounded_memory_and_no_temp_file(tmp_path):
    """A 256 MiB manifest.csv and report.xlsx of zeros in a small ZIP: refused by their
    compression ratio before a byte is inflated; exit 1 with the reason; no temp file;
    peak memory within 40 MB of the same command on a tiny file (measured in this run)."""
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compresslevel=9) as zf:
        for name in ("manifest.csv", "report.xlsx"):
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                for _ in range(256):
                    f.write(bytes(1024 * 1024))
    assert bomb.stat().st_size < 2 * 1024 * 1024
    baseline = tmp_path / "tiny.zip"
    baseline.write_bytes(b"not a zip")
    _code, _out, base_rss, _left = _verify_in_child(baseline, tmp_path)
    code, output, rss, left = _verify_in_child(bomb, tmp_path)
    assert code == 1, output
    assert "manifest.csv: refused: compression ratio" in output
    assert "report.xlsx: refused: compression ratio" in output
    assert "Traceback" not in output
    assert left == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["bomb.zip", "tiny.zip"]
    assert rss - base_rss < 40 * 1024, (rss, base_rss)


def test_a_bomb_inside_the_workbook_is_refused(tmp_path):
    """The workbook's own XML parts are bounded too: a sheet part inflating to 256 MiB is
    refused as a part of report.xlsx, not parsed."""
    inner = _bomb(tmp_path / "inner.xlsx", "xl/workbook.xml", 256)
    manifest = f"path,sha256,size\r\nreport.xlsx,{'0' * 64},1\r\n".encode()
    bundle = _zip(
        tmp_path / "b.zip",
        {"manifest.csv": manifest, "report.xlsx": inner.read_bytes()},
        compress=False,
    )
    problems = export.verify_bundle(bundle)
    assert any(
        p.startswith("report.xlsx: its part xl/workbook.xml: refused: compression ratio")
        for p in problems
    ), problems


def _patch_declared_size(path: Path, name: str, size: int) -> None:
    """Make the central directory declare `size` bytes for a member (as a forger would)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len] == name.encode():
            struct.pack_into("<I", data, at + 24, size)
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} not found")


def test_a_huge_declared_size_is_refused_before_reading(runner, tmp_path):
    """A member claiming about 4 GiB from a few bytes is refused by name and numbers."""
    bundle = _zip(tmp_path / "b.zip", {"manifest.csv": b"path,sha256,size\r\n"})
    _patch_declared_size(bundle, "manifest.csv", 0xFFFFFFF0)
    result = runner.invoke(args=["export", "verify", str(bundle)])
    assert result.exit_code == 1
    assert "manifest.csv: refused: compression ratio" in result.output
    assert "4,294,967,280 bytes" in result.output
    assert "Traceback" not in result.output


def _safe_members() -> dict[str, bytes]:
    manifest = "path,sha256,size\r\n../evil.txt," + "0" * 64 + ",1\r\n"
    return {"manifest.csv": manifest.encode("utf-8-sig")}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.txt", "a '..' path component"),
        ("evidence/../../etc/cron.d/x", "a '..' path component"),
        ("/etc/passwd", "an absolute path"),
        ("C:/Windows/win.ini", "an absolute path"),
        ("evidence\\..\\x.txt", "a backslash or a control character"),
        ("evidence/a\x01b.txt", "a backslash or a control character"),
    ],
)
def test_unsafe_member_names_are_refused(runner, tmp_path, name, reason):
    """Traversal, absolute, drive-letter, backslash and control-character names are each a
    refused member (never reported intact)."""
    bundle = _zip(tmp_path / "b.zip", _safe_members() | {name: b"x"})
    result = runner.invoke(args=["export", "verify", str(bundle)])
    assert result.exit_code == 1
    assert f"refused: {reason}" in result.output
    assert "bundle intact" not in result.output
    assert "manifest.csv line 2: unsafe path '../evil.txt'" in result.output


def test_a_nul_in_a_name_is_refused(tmp_path):
    """zipfile cuts names at NUL when reading; the name as stored is checked."""
    bundle = _zip(tmp_path / "b.zip", {"manifest.csv": b"path,sha256,size\r\n", "evilXtxt": b"x"})
    data = bundle.read_bytes().replace(b"evilXtxt", b"evil\x00txt")
    bundle.write_bytes(data)
    problems = export.verify_bundle(bundle)
    assert any("'evil\\x00txt': refused: a backslash or a control character" in p for p in problems)


def test_duplicates_and_case_collisions_are_refused(tmp_path):
    """A name twice (the second would overwrite the first when extracted) and names that
    differ only in case (the same file on Windows and macOS) are refused."""
    path = tmp_path / "b.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it writes
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("manifest.csv", b"path,sha256,size\r\n")
            zf.writestr("evidence/a.pdf", b"one")
            zf.writestr("evidence/a.pdf", b"two")
            zf.writestr("evidence/B.pdf", b"one")
            zf.writestr("evidence/b.pdf", b"two")
    problems = export.verify_bundle(path)
    assert "evidence/a.pdf: refused: appears twice in the ZIP" in problems
    assert "evidence/b.pdf: refused: differs only in case from evidence/B.pdf" in problems


def test_a_symlink_entry_is_refused(runner, tmp_path):
    """A member stored as a symbolic link is refused, not followed or hashed."""
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.csv", b"path,sha256,size\r\n")
        link = zipfile.ZipInfo("evidence/passwd")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    result = runner.invoke(args=["export", "verify", str(path)])
    assert result.exit_code == 1
    assert "evidence/passwd: refused: a symbolic link" in result.output


def test_a_non_zip_file_is_one_line(runner, tmp_path):
    """Something that is not a ZIP (or a truncated one) is one clear line and exit 1."""
    for name, data in (("x.zip", b"MZ\x90\x00not a zip"), ("cut.zip", b"PK\x03\x04" + b"\0" * 30)):
        path = tmp_path / name
        path.write_bytes(data)
        result = runner.invoke(args=["export", "verify", str(path)])
        assert result.exit_code == 1
        assert "not a readable ZIP file" in result.output and "Traceback" not in result.output


def test_too_many_members_are_refused_before_parsing(tmp_path):
    """The member count is read from the ZIP's end record and bounded before zipfile
    builds its directory."""
    bundle = _zip(tmp_path / "b.zip", {f"evidence/{n}.txt": b"x" for n in range(11)})
    problems = verify.verify_bundle(bundle, verify.Limits(members=10))
    assert problems == [f"{bundle}: the ZIP lists 11 members, more than the limit of 10"]


def test_entities_in_the_workbook_are_not_expanded(tmp_path):
    """A workbook part with an entity bomb ("billion laughs") is one line saying the
    workbook cannot be read; nothing is expanded."""
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
        + ']><workbook><sheets><sheet name="&i;"/></sheets></workbook>'
    )
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("xl/workbook.xml", laughs)
    manifest = f"path,sha256,size\r\nreport.xlsx,{'0' * 64},1\r\n".encode()
    bundle = _zip(tmp_path / "b.zip", {"manifest.csv": manifest, "report.xlsx": inner.getvalue()})
    problems = export.verify_bundle(bundle)
    assert any(p.startswith("report.xlsx: cannot be read (") for p in problems), problems
    assert not any("a" * 1000 in p for p in problems)
