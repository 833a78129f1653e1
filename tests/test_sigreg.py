"""SIGReg against a numpy re-implementation of its definition, plus
directions, determinism, gradients and validation; its Epps-Pulley paths
(recurrence, materialised, compiled) against each other and the brute-force (N, M, knots)
materialisation, including chunk boundaries and 2 gloo processes."""

import types
from pathlib import Path

import numpy as np
import pytest
import scipy.special
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import value_and_gradient
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lejepa import SIGReg, stats
from lejepa import sigreg as sigreg_module
from lejepa.sigreg import PATHS, TESTS, choose_path, materialised_epps_pulley, random_directions
from lejepa.timing import naive_sigreg


def gaussian_directions_numpy(dim, num_slices, step):
    """The documented recipe, written out: normalised torch.randn draws from a
    CPU generator seeded by step."""
    generator = torch.Generator().manual_seed(step)
    a = torch.randn(dim, num_slices, generator=generator, dtype=torch.float64).numpy()
    return a / np.linalg.norm(a, axis=0)


def test_sigreg_matches_definition(epps_pulley_numpy):
    z = np.random.default_rng(0).normal(size=(200, 12))
    sigreg = SIGReg(num_slices=32)
    value = sigreg(torch.tensor(z), step=7).item()
    expected = epps_pulley_numpy(z @ gaussian_directions_numpy(12, 32, 7)).mean()
    assert value == pytest.approx(expected, rel=1e-12)


def test_sigreg_matches_definition_float32(epps_pulley_numpy):
    z = np.random.default_rng(1).normal(size=(512, 64))
    value = SIGReg(num_slices=128, knots=33)(torch.tensor(z, dtype=torch.float32), step=3).item()
    expected = epps_pulley_numpy(z @ gaussian_directions_numpy(64, 128, 3), knots=33).mean()
    assert value == pytest.approx(expected, rel=1e-4)


def test_sobol_directions_follow_the_recipe():
    engine = torch.quasirandom.SobolEngine(dimension=6, scramble=True, seed=5)
    points = engine.draw(20, dtype=torch.float64).numpy()  # (M, D)
    expected = scipy.special.ndtri(points).T
    expected /= np.linalg.norm(expected, axis=0)
    np.testing.assert_allclose(
        random_directions(dim=6, num_slices=20, step=5, kind="sobol").numpy(), expected, rtol=1e-12
    )


@pytest.mark.parametrize("kind", ["gaussian", "sobol"])
def test_directions_are_unit_and_depend_only_on_step(kind):
    torch.manual_seed(0)
    a = random_directions(dim=9, num_slices=40, step=11, kind=kind)
    torch.manual_seed(123)
    torch.randn(100)
    b = random_directions(dim=9, num_slices=40, step=11, kind=kind)
    c = random_directions(dim=9, num_slices=40, step=12, kind=kind)
    assert a.shape == (9, 40)
    torch.testing.assert_close(a.norm(dim=0), torch.ones(40, dtype=torch.float64))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("directions", ["gaussian", "sobol"])
def test_same_step_same_value_under_different_global_seeds(directions):
    z = torch.randn(100, 16, generator=torch.Generator().manual_seed(0))
    sigreg = SIGReg(num_slices=20, directions=directions)
    torch.manual_seed(1)
    first = sigreg(z, step=4)
    torch.manual_seed(2)
    second = SIGReg(num_slices=20, directions=directions)(z, step=4)
    third = sigreg(z, step=5)
    assert torch.equal(first, second)
    assert first != third


def test_direction_cache_follows_dim_and_dtype(epps_pulley_numpy):
    sigreg = SIGReg(num_slices=8)
    z = np.random.default_rng(2).normal(size=(50, 10))
    for dim in (4, 10, 4):
        value = sigreg(torch.tensor(z[:, :dim]), step=1).item()
        assert value == pytest.approx(
            epps_pulley_numpy(z[:, :dim] @ gaussian_directions_numpy(dim, 8, 1)).mean(), rel=1e-12
        )
    value32 = sigreg(torch.tensor(z[:, :4], dtype=torch.float32), step=1).item()
    assert value32 == pytest.approx(
        epps_pulley_numpy(z[:, :4] @ gaussian_directions_numpy(4, 8, 1)).mean(), rel=1e-4
    )


@pytest.mark.parametrize("test", sorted(TESTS))
def test_views_are_averaged_with_shared_directions(test):
    z = torch.randn(3, 40, 6, dtype=torch.float64)
    sigreg = SIGReg(num_slices=10, test=test)
    per_view = torch.stack([sigreg(z[v], step=2) for v in range(3)]).mean()
    torch.testing.assert_close(sigreg(z, step=2), per_view, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("test", sorted(TESTS))
def test_each_test_is_the_mean_of_the_univariate_statistic(test):
    z = torch.randn(60, 5, dtype=torch.float64)
    a = random_directions(dim=5, num_slices=7, step=9)
    expected = getattr(stats, test)(z @ a).mean()
    torch.testing.assert_close(SIGReg(num_slices=7, test=test)(z, step=9), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("test", sorted(TESTS))
def test_gradcheck(test):
    z = torch.randn(14, 4, dtype=torch.float64, requires_grad=True)
    sigreg = SIGReg(num_slices=5, test=test, knots=9)
    assert torch.autograd.gradcheck(lambda v: sigreg(v, step=0), (z,))


@pytest.mark.parametrize("knots", [17, 256])
def test_gradient_matches_direct_autograd(knots):
    z = torch.randn(256, 32, generator=torch.Generator().manual_seed(3))
    sigreg = SIGReg(num_slices=64, knots=knots)
    directions = sigreg.directions_for(dim=32, step=1, device="cpu", dtype=torch.float64)
    reference_z = z.double().requires_grad_(True)
    naive_sigreg(reference_z, directions, knots=knots).backward()
    ours_z = z.clone().requires_grad_(True)
    sigreg(ours_z, step=1).backward()
    relative = (ours_z.grad.double() - reference_z.grad).norm() / reference_z.grad.norm()
    assert relative < 1e-5


def test_half_precision_is_computed_in_float32(epps_pulley_numpy):
    z = torch.randn(128, 16, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    sigreg = SIGReg(num_slices=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = sigreg(z, step=2)
    assert value.dtype == torch.float32
    expected = epps_pulley_numpy(z.double().numpy() @ gaussian_directions_numpy(16, 32, 2)).mean()
    assert value.item() == pytest.approx(expected, rel=1e-4)


def test_large_on_non_gaussian_embeddings():
    generator = torch.Generator().manual_seed(4)
    sigreg = SIGReg(num_slices=64)
    isotropic = torch.randn(512, 32, generator=generator)
    collapsed = torch.randn(512, 1, generator=generator) * torch.ones(1, 32)  # rank one
    anisotropic = isotropic * torch.linspace(0.1, 3.0, 32)
    null_value = sigreg(isotropic, step=0).item()
    assert 0.7 < null_value < 1.5  # null mean 1.0526
    assert sigreg(collapsed, step=0).item() > 20 * null_value
    assert sigreg(anisotropic, step=0).item() > 10 * null_value


def test_validation():
    with pytest.raises(ValueError, match="test must be one of .*got 'kolmogorov'"):
        SIGReg(test="kolmogorov")
    with pytest.raises(ValueError, match="directions must be one of .*got 'uniform'"):
        SIGReg(directions="uniform")
    with pytest.raises(ValueError, match="num_slices must be an integer >= 1, got 0"):
        SIGReg(num_slices=0)
    with pytest.raises(ValueError, match="knots must be an integer >= 2"):
        SIGReg(knots=1)
    with pytest.raises(ValueError, match="path must be one of .*got 'fused'"):
        SIGReg(path="fused")
    sigreg = SIGReg(num_slices=4)
    with pytest.raises(ValueError, match=r"z must have shape \(N, D\) or \(V, N, D\), got shape \(5,\)"):
        sigreg(torch.randn(5), step=0)
    with pytest.raises(ValueError, match=r"z needs at least N=2 samples, got shape \(1, 8\)"):
        sigreg(torch.randn(1, 8), step=0)
    with pytest.raises(ValueError, match=r"z contains non-finite values"):
        sigreg(torch.full((4, 3), float("nan")), step=0)
    with pytest.raises(TypeError):
        sigreg(torch.randn(4, 3))  # step is required and keyword-only


def test_a_callable_test_gives_the_value_of_the_named_test_it_reimplements():
    def cramer_von_mises_by_hand(projections):
        """W^2 = 1/(12N) + sum_i (Phi(x_(i)) - (2i - 1)/(2N))^2 per column, Phi through erf."""
        n = projections.shape[0]
        cdf = 0.5 * (1 + torch.erf(torch.sort(projections, dim=0).values / np.sqrt(2)))
        ranks = torch.arange(1, n + 1, dtype=projections.dtype)[:, None]
        return 1 / (12 * n) + ((cdf - (2 * ranks - 1) / (2 * n)) ** 2).sum(0)

    generator = torch.Generator().manual_seed(0)
    for shape in ((64, 16), (3, 64, 16)):  # one view, three views
        z = torch.randn(*shape, generator=generator, dtype=torch.float64)
        named_z, callable_z = z.clone().requires_grad_(), z.clone().requires_grad_()
        named = SIGReg(num_slices=32, test="cramer_von_mises")(named_z, step=5)
        mine = SIGReg(num_slices=32, test=cramer_von_mises_by_hand)(callable_z, step=5)
        assert mine.item() == pytest.approx(named.item(), rel=1e-12)
        named.backward()
        mine.backward()
        torch.testing.assert_close(callable_z.grad, named_z.grad, rtol=1e-10, atol=1e-12)
    assert "test=cramer_von_mises_by_hand" in repr(SIGReg(test=cramer_von_mises_by_hand))
    with pytest.raises(ValueError, match="or a function"):
        SIGReg(test="kolmogorov")


# ---------------------------------------------------------------- paths: recurrence vs materialised


# (N, M, knots, chunk_entries): one chunk; chunks that divide M; a last chunk shorter than
# the others; one direction per chunk (a budget below one direction's table); 2 knots
# (A = 2, B = 1); knots that are not a product A B (padding knots); 256 knots.
SHAPES = [
    (64, 24, 17, None),
    (50, 24, 16, 50 * 2 * 12 * 6),  # A + 2B = 12 columns: 6 directions per chunk, 4 chunks
    (50, 23, 16, 50 * 2 * 12 * 6),  # 6, 6, 6, 5
    (30, 7, 9, 1),  # one direction per chunk
    (40, 5, 2, None),
    (33, 9, 11, 33 * 2 * 10 * 4),  # A + 2B = 10: 4 directions per chunk, 3 chunks
    (48, 6, 256, None),
]


@pytest.mark.parametrize("n, m, knots, chunk_entries", SHAPES)
def test_paths_agree_with_each_other_and_brute_force(n, m, knots, chunk_entries, monkeypatch):
    """Value and gradient wrt z in float64: materialised = recurrence = compiled = autograd
    through the (N, M, knots) cos and sin (``naive_sigreg``), on a non-Gaussian z."""
    if chunk_entries is not None:
        monkeypatch.setattr(sigreg_module, "MATERIALISED_CHUNK_ENTRIES", chunk_entries)
    generator = torch.Generator().manual_seed(n + m + knots)
    z = torch.randn(n, 6, generator=generator, dtype=torch.float64) * 1.5 + 0.3
    z[:, 0] = z[:, 0] ** 2  # skewed, so the statistic and its gradient are far from the null
    directions = random_directions(dim=6, num_slices=m, step=2)
    reference_value, reference_gradient = value_and_gradient(lambda v: naive_sigreg(v, directions, knots=knots), z)
    for path in ("recurrence", "materialised", "compiled"):
        sigreg = SIGReg(num_slices=m, knots=knots, path=path)
        value, gradient = value_and_gradient(lambda v: sigreg(v, step=2), z)
        torch.testing.assert_close(value, reference_value, rtol=1e-12, atol=0, msg=path)
        torch.testing.assert_close(gradient, reference_gradient, rtol=1e-10, atol=1e-12, msg=path)


def test_materialised_chunks_are_the_single_chunk_result(monkeypatch):
    z = torch.randn(40, 8, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    sigreg = SIGReg(num_slices=13, knots=17, path="materialised")
    whole = value_and_gradient(lambda v: sigreg(v, step=3), z)
    for chunk_entries in (1, 40 * 2 * 12 * 3, 40 * 2 * 12 * 5):  # 13, 5 and 3 chunks
        monkeypatch.setattr(sigreg_module, "MATERIALISED_CHUNK_ENTRIES", chunk_entries)
        chunked = value_and_gradient(lambda v: sigreg(v, step=3), z)
        torch.testing.assert_close(chunked, whole, rtol=1e-13, atol=1e-15)


def test_materialised_matches_numpy_definition_per_column(epps_pulley_numpy):
    x = np.random.default_rng(3).standard_t(df=5, size=(300, 11))
    for knots in (5, 17, 64):
        expected = epps_pulley_numpy(x, t_max=2.5, knots=knots)
        value = materialised_epps_pulley(torch.tensor(x), t_max=2.5, knots=knots).numpy()
        np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_materialised_float32_is_within_float32_resolution(epps_pulley_numpy):
    z = np.random.default_rng(4).normal(size=(512, 64))
    expected = epps_pulley_numpy(z @ gaussian_directions_numpy(64, 128, 3), knots=33).mean()
    value = SIGReg(num_slices=128, knots=33, path="materialised")(torch.tensor(z, dtype=torch.float32), step=3)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_materialised_views_and_half_precision(epps_pulley_numpy):
    z = torch.randn(3, 40, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    for path in PATHS:
        sigreg = SIGReg(num_slices=10, path=path)
        per_view = torch.stack([sigreg(z[v], step=2) for v in range(3)]).mean()
        torch.testing.assert_close(sigreg(z, step=2), per_view, rtol=1e-12, atol=1e-12)
    half = torch.randn(128, 16, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    value = SIGReg(num_slices=32, path="materialised")(half, step=2)
    expected = epps_pulley_numpy(half.double().numpy() @ gaussian_directions_numpy(16, 32, 2)).mean()
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(expected, rel=1e-4)


def test_materialised_gradcheck(monkeypatch):
    monkeypatch.setattr(sigreg_module, "MATERIALISED_CHUNK_ENTRIES", 1)  # recomputed per chunk
    z = torch.randn(14, 4, dtype=torch.float64, requires_grad=True)
    for num_slices, knots in ((5, 9), (3, 2)):
        sigreg = SIGReg(num_slices=num_slices, knots=knots, path="materialised")
        assert torch.autograd.gradcheck(lambda v: sigreg(v, step=0), (z,))


def test_auto_path_is_materialised_on_cuda_below_the_threshold_only(monkeypatch):
    def projections(n, m, device):  # choose_path reads the shape and the device only
        return types.SimpleNamespace(shape=(n, m), device=torch.device(device))

    largest_row = sigreg_module.AUTO_MATERIALISED_MAX_ENTRIES // 16
    assert choose_path(projections(512, 512, "cpu"), knots=17) == "recurrence"
    assert choose_path(projections(512, 512, "cuda"), knots=17) == "materialised"
    assert choose_path(projections(largest_row, 1, "cuda"), knots=16) == "materialised"
    assert choose_path(projections(largest_row + 1, 1, "cuda"), knots=16) == "recurrence"
    assert choose_path(projections(8192, 512, "cuda"), knots=16) == "materialised"  # 2**26: faster on the H200
    assert choose_path(projections(32768, 512, "cuda"), knots=16) == "recurrence"  # 2**28: slower there
    for path in ("recurrence", "materialised"):
        assert choose_path(projections(512, 512, "cuda"), knots=17, path=path) == path
        assert choose_path(projections(512, 512, "cpu"), knots=17, path=path) == path
    assert "path='auto'" in repr(SIGReg())
    monkeypatch.setattr(sigreg_module, "_is_distributed", lambda: True)  # compiled sums one process's samples
    assert choose_path(projections(512, 512, "cuda"), knots=17, path="compiled") == "materialised"


def test_tf32_is_off_inside_the_materialised_matmuls_and_restored_after():
    matmul = torch.backends.cuda.matmul
    assert not matmul.allow_tf32
    matmul.allow_tf32 = True  # the legacy API, as torch.set_float32_matmul_precision("high") sets it
    try:
        with sigreg_module._full_precision_matmul(torch.device("cuda")):
            assert not matmul.allow_tf32
        assert matmul.allow_tf32
        with sigreg_module._full_precision_matmul(torch.device("cpu")):
            assert matmul.allow_tf32  # CPU matmuls do not use TF32
    finally:
        matmul.allow_tf32 = False


# 2 gloo processes, float64: the materialised path (one chunk and 3 chunks) on each rank's
# rows equals one process holding the whole batch with the recurrence path: the statistic
# on every rank and the layer's gradients after DDP's averaging (uneven split).
DDP_ROWS = [(0, 11), (11, 18)]
DDP_CHUNK_ENTRIES = (None, 11 * 2 * 9 * 3)  # knots 9: A + 2B = 9 columns; 3 directions per chunk on rank 0


def ddp_problem():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(18, 5, generator=generator, dtype=torch.float64)
    inputs[:, 0] = inputs[:, 0] ** 2
    torch.manual_seed(1)
    return inputs, nn.Linear(5, 6).double()


def ddp_value_and_gradients(model, inputs, path):
    model.zero_grad()
    value = SIGReg(num_slices=8, knots=9, path=path)(model(inputs), step=7)
    value.backward()
    return value.detach(), [p.grad.clone() for p in model.parameters()]


def ddp_worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        inputs, layer = ddp_problem()
        model = DistributedDataParallel(layer)
        start, stop = DDP_ROWS[rank]
        results = []
        for chunk_entries in DDP_CHUNK_ENTRIES:
            if chunk_entries is not None:
                sigreg_module.MATERIALISED_CHUNK_ENTRIES = chunk_entries
            results.append(ddp_value_and_gradients(model, inputs[start:stop], "materialised"))
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_materialised_path_under_ddp_equals_one_process_on_the_whole_batch(tmp_path):
    mp.spawn(ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    inputs, layer = ddp_problem()
    expected_value, expected_gradients = ddp_value_and_gradients(layer, inputs, "recurrence")
    for rank in range(2):
        for value, gradients in torch.load(tmp_path / f"rank{rank}.pt"):
            torch.testing.assert_close(value, expected_value, rtol=0, atol=1e-10)
            for gradient, expected in zip(gradients, expected_gradients):
                torch.testing.assert_close(gradient, expected, rtol=0, atol=1e-10)


def sigreg_timings(text: str) -> dict[str, list[dict]]:
    """The rows of each '## ours, path=...' table of a bench/sigreg.py output, by path."""
    tables, rows = {}, None
    for line in text.splitlines():
        if line.startswith("## ours, path="):
            rows = tables[line.removeprefix("## ours, path=")] = []
        elif rows is not None and line.count("|") == 2 and line.split()[0].isdigit():
            shape, timing, paper = (part.split() for part in line.split("|"))
            rows.append({
                "n": int(shape[0]), "m": int(shape[1]), "knots": int(shape[2]), "ms": float(timing[0]),
                "peak_mb": float(timing[3]), "launches": None if timing[4] == "?" else int(timing[4]),
                "paper_ms": None if paper[0] == "-" else float(paper[0]),
            })  # fmt: skip
        elif not line.strip():
            rows = None
    return tables


def test_readme_gpu_timing_matches_the_committed_bench_output():
    """README's sentence on the H200 timing, recomputed from bench/results/sigreg-cuda.txt."""
    repo = Path(__file__).parents[1]
    text = (repo / "bench" / "results" / "sigreg-cuda.txt").read_text()
    timings = sigreg_timings(text)
    rows = [row for row in timings["auto"] if row["paper_ms"] is not None]
    ratios = {(row["n"], row["m"], row["knots"]): row["ms"] / row["paper_ms"] for row in rows}
    faster = sorted((n, ratio) for (n, m, knots), ratio in ratios.items() if ratio <= 1)
    smallest = next(row for row in rows if (row["n"], row["m"], row["knots"]) == (512, 512, 16))
    baselines = [line.split() for line in text.splitlines() if line.count("|") == 3]
    ours_over_naive = next(float(row[-2]) for row in baselines if row[:3] == ["8192", "8192", "16"])
    readme = " ".join((repo / "README.md").read_text().split())
    assert "H200" in text.splitlines()[0]
    assert (f"at or below the paper's V100 time on {len(faster)} of the {len(rows)} rows with a paper time "
            f"({faster[0][1]:.2f} and {faster[1][1]:.2f} of it, at N = {faster[0][0]} and {faster[1][0]} "
            f"with M = 512) and above it on the other {len(rows) - len(faster)}: "
            f"{ratios[(512, 512, 16)]:.2f} times at N = M = 512 ({smallest['ms']:.3f} ms against "
            f"{smallest['paper_ms']:.3f} ms, {smallest['launches']} launches) and "
            f"{ratios[(8192, 8192, 16)]:.2f} times at N = M = 8192") in readme  # fmt: skip
    assert f"(ours / naive {ours_over_naive:.3f})" in readme
    by_path = {
        path: {(row["n"], row["m"], row["knots"]): row["ms"] for row in timings[path]}
        for path in ("recurrence", "materialised")
    }
    recurrence_faster = [shape for shape, ms in by_path["recurrence"].items() if ms < by_path["materialised"][shape]]
    entries = [n * m * knots for n, m, knots in recurrence_faster if n * m >= 2**24]
    assert sorted(recurrence_faster)[-2:] == [(8192, 8192, 16), (32768, 512, 16)]
    assert min(entries) > sigreg_module.AUTO_MATERIALISED_MAX_ENTRIES >= 8192 * 512 * 16  # the limit splits them
    assert "N·M·knots = 2^27" in readme and sigreg_module.AUTO_MATERIALISED_MAX_ENTRIES == 2**27
    for shape, text in (((32768, 512, 16), "N = 32768, M = 512"), ((8192, 8192, 16), "N = M = 8192")):
        recurrence, materialised = by_path["recurrence"][shape], by_path["materialised"][shape]
        assert f"{text}: {recurrence:.2f} ms against {materialised:.2f}" in readme


def test_readme_cpu_timing_of_the_compiled_path_matches_the_committed_bench_output():
    """README's sentence on the compiled path on this CPU, recomputed from bench/results/sigreg-cpu.txt:
    its peak extra memory against the naive version's (which holds the (N, M, knots) angles) and
    its time against the recurrence's, over the rows of the small grid."""
    repo = Path(__file__).parents[1]
    text = (repo / "bench" / "results" / "sigreg-cpu.txt").read_text()
    timings = sigreg_timings(text)
    compiled = {(row["n"], row["m"], row["knots"]): row for row in timings["compiled"]}
    recurrence = {(row["n"], row["m"], row["knots"]): row["ms"] for row in timings["recurrence"]}
    baselines = text[text.index("## baselines") :].splitlines()
    assert "naive ms" in baselines[1].split("|")[1]
    naive_mb = [float(line.split("|")[1].split()[3]) for line in baselines if line.split()[0].isdigit()]
    peaks = [row["peak_mb"] for row in compiled.values()]
    ratios = [row["ms"] / recurrence[shape] for shape, row in compiled.items()]
    assert len(naive_mb) == len(compiled) and max(peaks) < min(naive_mb)
    readme = " ".join((repo / "README.md").read_text().split())
    assert (f"its peak extra memory is {min(peaks):.1f}-{max(peaks):.1f} MB on the small grid's rows, against "
            f"{min(naive_mb):.0f}-{max(naive_mb):.0f} MB for the naive version, and its time "
            f"{min(ratios):.2f}-{max(ratios):.2f} times the recurrence's") in readme  # fmt: skip
