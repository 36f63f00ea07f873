"""Two CPU processes with gloo (torchrun) give what one process gives: the CLI, compute_features (order of
the rows), the Evaluator (``score`` of a generator and streaming ``update``/``compute``), bad files.

What "the same" means (docs/distributed.md): the features, their order and the counts are bit-identical; every
metric value agrees to 1e-12 relative (SWD, from float32 projections, to 1e-6), because OpenBLAS/LAPACK may sum
float64 in another order with another thread count, and torchrun gives each process OMP_NUM_THREADS=1 while
this process keeps the machine's BLAS threads. One process runs here with torch on 1 thread, as each torchrun
process does: float32 convolutions reassociate differently with another thread count (FID moves in the 7th
significant digit), not with the process count.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import ganeval
from conftest import assert_scores_close, smooth_images, write_images
from ganeval.evaluator import Evaluator
from ganeval.extractors.inception import Extractor

BATCH = 4  # 11 real images: batches of 4, 4, 3, so rank 0 extracts 8 and rank 1 extracts 3 (4 + 3 unread)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("distributed")
    return (
        write_images(root / "real", smooth_images(11, 32, seed=41)),
        write_images(root / "fake", smooth_images(9, 32, seed=42, shift=0.3)),
    )


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.mark.subprocess
@pytest.mark.slow
def test_commands_that_do_not_split_refuse_torchrun(tmp_path: Path) -> None:
    run = torchrun("-m", "ganeval", "leaderboard", "show", str(tmp_path / "board.csv"), cwd=tmp_path)
    assert run.returncode != 0
    assert "error: `ganeval leaderboard` runs as one process; under torchrun use one of score" in run.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_cli_two_processes_equal_one_and_a_bad_file_on_the_second_rank_stops_every_rank(
    sets, tmp_path: Path, trunk_info
) -> None:
    """An unreadable file in rank 1's share stops every rank with the error one process gives; with --skip-bad,
    `score` of every split metric equals one process's."""
    real, _ = sets
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in sorted(real.iterdir()):
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "0005.png").write_bytes(b"not a png")  # batch 1 (images 4-7): rank 1's
    run = torchrun(
        "-m",
        "ganeval",
        "fid",
        str(real),
        str(broken),
        "--batch-size",
        str(BATCH),
        "--no-cache",
        "-q",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert errors and "0005.png" in errors[0]
    skipping = torchrun(
        "-m",
        "ganeval",
        "score",
        str(real),
        str(broken),
        "--metrics",
        "fid,kid,pr,swd",
        "--batch-size",
        str(BATCH),
        "--no-cache",
        "--json",
        "-q",
        "--skip-bad",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert skipping.returncode == 0, skipping.stderr[-2000:]
    together = json.loads(skipping.stdout)  # one JSON document: only rank 0 printed
    with one_thread():
        alone = ganeval.score(
            real,
            broken,
            metrics=["fid", "kid", "pr", "swd"],
            batch_size=BATCH,
            cache=False,
            skip_bad=True,
            device="cpu",
            progress=False,
        )
    assert_scores_close({key: together[key] for key in alone.scores}, alone.scores)
    assert together["provenance"]["world_size"] == 2 and "world_size" not in alone.provenance
    assert together["n_real"] == 11 and together["n_fake"] == 10
    assert (
        len(together["provenance"]["fake"]["skipped"]) == 1
        and "0005.png" in together["provenance"]["fake"]["skipped"][0]
    )


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, torch, torch.distributed as dist
    import ganeval
    from ganeval.evaluator import Evaluator
    from ganeval.extractors.inception import Extractor

    real, out = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    exec(open(sys.argv[3]).read())  # the generator and the streamed batches, shared with the test
    features = ganeval.compute_features(real, Extractor(device="cpu", batch_size=4), cache=False, progress=False)
    assert (features.pool3 is None) == (rank != 0) and len(features.names) == 11
    if rank == 0:
        np.save(out + "/pool3.npy", features.pool3)
        json.dump(features.names, open(out + "/names.json", "w"))
    ev = Evaluator(real, metrics=("fid", "kid", "pr", "swd"), num_samples=10, batch_size=4, device="cpu",
                   cache=False, progress=False)
    scored = ev.score(make_generator(), z_dim=8)
    ev.reset()
    for batch in streamed(rank):
        ev.update(batch)
    streamed_result = ev.compute()
    json.dump({"score": scored.scores, "n": scored.n_fake, "stream": streamed_result.scores,
               "stream_n": streamed_result.n_fake, "world_size": scored.provenance.get("world_size")},
              open(f"{out}/rank{rank}.json", "w"))
    dist.destroy_process_group()
""")

SHARED = textwrap.dedent("""
    def make_generator():
        torch.manual_seed(7)
        return torch.nn.Sequential(torch.nn.Linear(8, 3 * 32 * 32), torch.nn.Tanh(), torch.nn.Unflatten(1, (3, 32, 32)))

    def streamed(rank):
        images = torch.from_numpy(np.random.default_rng(9).uniform(-1, 1, (4, 3, 3, 32, 32)).astype(np.float32))
        return [images[0], images[2]] if rank == 0 else [images[1], images[3][:2]]
""")


@pytest.mark.slow
@pytest.mark.subprocess
def test_evaluator_and_feature_order_in_a_ddp_script(sets, tmp_path: Path, trunk_info) -> None:
    real, _ = sets
    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / "shared.py").write_text(SHARED)
    run = torchrun(str(tmp_path / "script.py"), str(real), str(tmp_path), str(tmp_path / "shared.py"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[:6000]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank gets rank 0's Result
    namespace: dict[str, object] = {"torch": torch, "np": np}
    exec(SHARED, namespace)
    with one_thread():
        alone = ganeval.compute_features(real, Extractor(device="cpu", batch_size=BATCH), cache=False, progress=False)
        assert np.array_equal(np.load(tmp_path / "pool3.npy"), alone.pool3)
        assert json.loads((tmp_path / "names.json").read_text()) == alone.names
        ev = Evaluator(
            real,
            metrics=("fid", "kid", "pr", "swd"),
            num_samples=10,
            batch_size=BATCH,
            device="cpu",
            cache=False,
            progress=False,
        )
        scored = ev.score(namespace["make_generator"](), z_dim=8)
        ev.reset()
        zero, one = namespace["streamed"](0), namespace["streamed"](1)
        for batch in (zero[0], one[0], zero[1], one[1]):  # the ranks' batches interleaved, as compute() orders them
            ev.update(batch)
        streamed = ev.compute()
    assert_scores_close(ranks[0]["score"], scored.scores)
    assert ranks[0]["n"] == 10 and ranks[0]["world_size"] == 2
    # Streamed image i of rank r is image 2i + r of the set, so SWD's seeded neighbourhoods fall elsewhere
    # than for one process numbering the same images 0, 1, 2, ...; every other metric is order-exact.
    exact = {key: value for key, value in streamed.scores.items() if not key.startswith("swd")}
    assert_scores_close({key: ranks[0]["stream"][key] for key in exact}, exact)
    assert ranks[0]["stream_n"] == 11


def test_the_comparison_tells_a_wrong_value() -> None:
    """The tolerance the tests above use lets through BLAS reordering (1e-15 relative), not a wrong number."""
    same = {"fid": 7.632979479309377, "kid": 1e-17, "n": 3, "hist": {"a": 0.25}}
    assert_scores_close({"fid": 7.632979479309391, "kid": -2e-17, "n": 3, "hist": {"a": 0.25}}, same)
    for wrong in (
        {"fid": 7.63298, "kid": 1e-17, "n": 3, "hist": {"a": 0.25}},
        {"fid": 7.632979479309377, "kid": 1e-17, "n": 4, "hist": {"a": 0.25}},
        {"fid": 7.632979479309377, "kid": 1e-17, "n": 3, "hist": {"a": 0.26}},
        {"fid": 7.632979479309377, "kid": 1e-17, "n": 3},
    ):
        with pytest.raises(AssertionError):
            assert_scores_close(wrong, same)
    assert_scores_close({"swd": 1.0 + 1e-8}, {"swd": 1.0})
    with pytest.raises(AssertionError):
        assert_scores_close({"swd": 1.0 + 1e-5}, {"swd": 1.0})
