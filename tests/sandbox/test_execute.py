"""What the model's code can do: results, state per thread, files in and out, images, errors."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from assistd.sandbox import SandboxManager

PNG = b"\x89PNG\r\n\x1a\n"


async def test_one_plus_one(manager: SandboxManager, thread) -> None:
    result = await manager.execute(thread(), "1 + 1")

    assert result.logs == "2\n"
    assert not result.error
    assert not result.timed_out
    assert not result.restarted
    assert result.images == []
    assert result.files == []


async def test_state_is_kept_across_executions_of_one_thread(manager: SandboxManager, thread) -> None:
    t = thread()
    await manager.execute(t, "counter = 41\ndef bump():\n    global counter\n    counter += 1\n    return counter")

    result = await manager.execute(t, "bump()")

    assert result.logs == "42\n"


async def test_threads_do_not_share_variables_or_files(manager: SandboxManager, thread) -> None:
    a, b = thread(), thread()
    await manager.execute(a, "secret = 'alpha'\nopen('/mnt/data/mine.txt', 'w').write('alpha')")

    result = await manager.execute(b, "import os\nprint(os.listdir('/mnt/data'))\nsecret")

    assert result.logs.startswith("[]\n")
    assert "NameError" in result.logs
    assert "alpha" not in result.logs
    again = await manager.execute(a, "print(secret, open('/mnt/data/mine.txt').read())")
    assert again.logs == "alpha alpha\n"


async def test_pandas_sums_a_column_of_a_staged_csv(manager: SandboxManager, thread, tmp_path: Path) -> None:
    blob = tmp_path / "blob-7f3a"  # blobs are stored under generated names; the model sees the real one
    with blob.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["region", "revenue"])
        for i in range(1, 101):
            w.writerow([f"r{i % 4}", i * 10])

    result = await manager.execute(
        thread(),
        "import pandas as pd\ndf = pd.read_csv('/mnt/data/sales 2024.csv')\nprint(df['revenue'].sum())",
        files=[("sales 2024.csv", blob)],
    )

    assert result.logs == "50500\n", result.logs
    assert result.files == []  # the staged file itself is not an output


async def test_matplotlib_chart_comes_back_as_a_png(manager: SandboxManager, thread) -> None:
    result = await manager.execute(
        thread(),
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.title('t')\nplt.show()",
    )

    assert not result.error, result.logs
    assert len(result.images) == 1
    png = result.images[0]
    assert png.startswith(PNG)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 100
    assert height > 100
    assert "<Figure" not in result.logs  # the figure's repr is not logged next to its image


async def test_a_generated_csv_is_an_output_file(manager: SandboxManager, thread) -> None:
    t = thread()
    result = await manager.execute(
        t,
        "import pandas as pd\n"
        "pd.DataFrame({'x': [1, 2], 'y': [3, 4]}).to_csv('/mnt/data/out.csv', index=False)\n"
        "import os; os.makedirs('/mnt/data/sub', exist_ok=True)\n"
        "open('/mnt/data/sub/notes.txt', 'w').write('hi')",
    )

    assert not result.error, result.logs
    by_path = {f.sandbox_path: f for f in result.files}
    assert set(by_path) == {"/mnt/data/out.csv", "/mnt/data/sub/notes.txt"}
    out = by_path["/mnt/data/out.csv"]
    assert out.name == "out.csv"
    assert out.path.read_text() == "x,y\n1,3\n2,4\n"
    assert out.size == out.path.stat().st_size
    result.cleanup()
    assert not out.path.exists()

    unchanged = await manager.execute(t, "x = 1")
    assert unchanged.files == []
    changed = await manager.execute(t, "open('/mnt/data/out.csv', 'a').write('5,6\\n')")
    assert [f.sandbox_path for f in changed.files] == ["/mnt/data/out.csv"]
    assert changed.files[0].path.read_text().endswith("5,6\n")


async def test_a_traceback_goes_back_to_the_model(manager: SandboxManager, thread) -> None:
    t = thread()
    result = await manager.execute(t, "def f(x):\n    return 10 / x\n\nprint('before')\nf(0)")

    assert result.error
    assert not result.restarted
    assert result.logs.startswith("before\n")
    assert "ZeroDivisionError" in result.logs
    assert "division by zero" in result.logs
    assert "return 10 / x" in result.logs  # the failing line, so the model can fix it
    assert "\x1b" not in result.logs  # no ANSI colour codes
    fixed = await manager.execute(t, "f(2)")
    assert fixed.logs == "5.0\n"


async def test_stdout_and_stderr_are_both_logged(manager: SandboxManager, thread) -> None:
    result = await manager.execute(thread(), "import sys\nprint('out')\nprint('err', file=sys.stderr)")

    assert "out\n" in result.logs
    assert "err\n" in result.logs


async def test_huge_output_keeps_its_head_and_tail(manager: SandboxManager, thread) -> None:
    result = await manager.execute(thread(), "for i in range(200_000):\n    print(i)")

    assert len(result.logs) < manager.config.max_log_chars + 200
    assert result.logs.startswith("0\n1\n2\n")
    assert result.logs.endswith("199999\n")
    assert re.search(r"\[\.\.\. \d+ characters of output skipped \.\.\.\]", result.logs)


async def test_file_names_are_never_paths(manager: SandboxManager, thread, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_text("data")

    result = await manager.execute(
        thread(),
        "import os\nprint(sorted(os.listdir('/mnt/data')))\nprint(os.path.exists('/etc/evil'))",
        files=[("../../etc/evil", src), ("a/b.csv", src), ("..", src), ("b.csv", src)],
    )

    assert result.logs == "['b (2).csv', 'b.csv', 'evil', 'file']\nFalse\n"


async def test_a_staged_file_is_copied_again_only_when_its_source_changes(
    manager: SandboxManager, thread, tmp_path: Path
) -> None:
    t = thread()
    src = tmp_path / "data.txt"
    src.write_text("v1")
    await manager.execute(t, "pass", files=[("data.txt", src)])
    edited = await manager.execute(t, "open('/mnt/data/data.txt', 'w').write('edited by the code')")
    assert [f.name for f in edited.files] == ["data.txt"]

    kept = await manager.execute(t, "print(open('/mnt/data/data.txt').read())", files=[("data.txt", src)])
    assert kept.logs == "edited by the code\n"  # same source: not copied over the code's edit

    src.write_text("v2")
    fresh = await manager.execute(t, "print(open('/mnt/data/data.txt').read())", files=[("data.txt", src)])
    assert fresh.logs == "v2\n"
