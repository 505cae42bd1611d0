"""The fast paths against their references: blocked Krylov chains, the structured gradient, the FFT
convolution, the structured tangent Gram, stacks of networks and batched ensembles.

Tolerances: float64 results agree to 1e-10 and float32 ones to 1e-5, relative to the norm of the
compared quantity (per lag for impulse responses, whose size changes geometrically with the lag).
"""
import math

import pytest
import torch
from conftest import white_noise_run

import numerics.kernels.empirical as ntk_module
import numerics.models.linear as model_module
import numerics.train.compare as compare_module
from derivations.spec import Spec
from numerics import (
    LinearRNN,
    ScaledConvolution,
    TrainingDiverged,
    compare_training,
    compare_training_many,
    generic_tangent_gram,
    structured_tangent_gram,
)
from numerics.data.convolution import causal_convolution
from numerics.data.problem import design_matrix, half_mse, predict, white_noise_data
from numerics.models.linear import _ImpulseResponse, krylov, krylov_block, ladder_size, power_ladder
from numerics.train.compare import ensemble_size
from numerics.train.packed import adam_step

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
SPECS = [Spec(), Spec(convention="B"), Spec(param="standard", feedthrough=False),
         Spec(convention="B", trained=("W", "C"), rates=(("W", "3"),))]
# (width, n_x, n_y, lags, σ_W): width 1, one lag, σ_W at and above 1.
SHAPES = [(1, 1, 1, 5, 0.9), (7, 2, 3, 1, 0.8), (9, 1, 1, 12, 1.0), (16, 2, 1, 20, 1.3), (24, 1, 2, 33, 0.6)]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm()) if b.norm() > 0 else float(a.norm())


def per_lag(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest error of one lag relative to the size of that lag (or of the largest lag, where a lag is 0)."""
    a, b = a.detach(), b.detach()
    scale = b.flatten(1).norm(dim=1).clamp_min(1e-300 + 1e-30 * float(b.norm()))
    return float(((a - b).flatten(1).norm(dim=1) / scale).max())


@pytest.fixture(params=[1, 2, 4, 8], ids=lambda b: f"block{b}")
def block(request, monkeypatch):
    """Force the Krylov block size, so every blocking is held against the plain chain."""
    monkeypatch.setattr(model_module, "krylov_block", lambda *args, **kwargs: request.param)
    monkeypatch.setattr(ntk_module, "krylov_block", lambda *args, **kwargs: request.param)
    return request.param


@pytest.mark.parametrize("n,count,k", [(1, 1, 1), (5, 7, 2), (6, 16, 3), (8, 33, 1)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_blocked_krylov_equals_the_chain(n, count, k, dtype):
    g = torch.Generator().manual_seed(n + count)
    M = torch.randn(3, n, n, dtype=torch.float64, generator=g) / math.sqrt(n)
    S = torch.randn(3, n, k, dtype=torch.float64, generator=g)
    scale = torch.tensor([0.9, 1.0, 1.4], dtype=torch.float64)[:, None, None]  # σ_W below, at and above 1
    powers = torch.stack([torch.linalg.matrix_power(scale * M, p) for p in range(count)], 1)
    right, left = powers @ S[:, None], S.mT[:, None] @ powers  # the definition, in float64
    M, S, scale = M.to(dtype), S.to(dtype), scale.to(dtype)
    for b in (1, 2, 4, 16):
        ladder = power_ladder(scale * M, ladder_size(count, b)) if b > 1 else None
        assert per_lag(krylov(M, S, count, scale, b, ladder).double()[0], right[0]) < TOLERANCE[dtype]
        for member in range(3):
            assert per_lag(krylov(M, S, count, scale, b, ladder).double()[member], right[member]) < TOLERANCE[dtype]
            assert per_lag(krylov(M, S.mT, count, scale, b, ladder, left=True).double()[member],
                           left[member]) < TOLERANCE[dtype]


def test_cpu_slices_of_a_stack_change_nothing(monkeypatch):
    M, S = torch.randn(5, 6, 6, dtype=torch.float64), torch.randn(5, 6, 1, dtype=torch.float64)
    whole = krylov(M, S, 9, 0.7)
    monkeypatch.setattr(model_module, "CACHE_BYTES", 2 * 6 * 6 * 8)  # two matrices per slice
    assert relative(krylov(M, S, 9, 0.7), whole) < 1e-14


def test_block_size_model():
    assert krylov_block(512, 1) == 1  # one vector: nothing to block
    assert krylov_block(2048, 40) == 1  # a wide matrix on the CPU: squaring costs more than it saves
    assert krylov_block(32, 256) > 8  # a small matrix and a long chain: the launches dominate
    assert krylov_block(1024, 256, device_type="cuda") > 1


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.digest())
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "w{}x{}y{}T{}s{}".format(*s))
def test_markov_parameters_equal_the_chain_and_the_definition(spec, shape, block):
    width, n_x, n_y, lags, sigma_w = shape
    net = LinearRNN(spec, width, n_x=n_x, n_y=n_y, sigmas={"W": sigma_w, "D": 0.7}, seed=width)
    W, F, C, D = net.matrices()
    expected = torch.stack([C @ torch.linalg.matrix_power(W, j - spec.input_lag) @ F if j >= spec.input_lag
                            else torch.zeros(n_y, n_x, dtype=W.dtype) for j in range(lags)])
    if spec.feedthrough:
        expected[0] += D
    assert per_lag(net.markov_parameters(lags), expected) < 1e-10
    assert per_lag(net.markov_parameters(lags, method="chain"), expected) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "w{}x{}y{}T{}s{}".format(*s))
def test_fast_training_gradient_equals_the_recurrence(shape, dtype, block):
    # The fast path (impulse response with its structured gradient, then the convolution, FFT from
    # 64 lags) against autograd through the recurrence, on the loss of every position.
    width, n_x, n_y, lags, sigma_w = shape
    for spec in (Spec(), Spec(convention="B", param="standard")):
        net = LinearRNN(spec, width, n_x=n_x, n_y=n_y, sigmas={"W": sigma_w}, dtype=dtype, seed=3)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(4, lags, n_x, dtype=torch.float64, generator=g).to(dtype)
        y = torch.randn(4, lags, n_y, dtype=torch.float64, generator=g).to(dtype)
        params = list(net.parameters())

        def gradient(output):  # a block that cannot reach the loss (convention B, one step) gets zeros
            grads = torch.autograd.grad(0.5 * (output - y).square().mean(), params, allow_unused=True)
            return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

        reference = gradient(net(x))
        for method in ("direct", "fft"):
            for a, b in zip(gradient(net.forward_convolution(x, method)), reference):
                assert relative(a, b) < TOLERANCE[dtype], (method, a.shape)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.digest())
def test_structured_gradient_equals_autograd_through_the_chain(spec, block):
    net = LinearRNN(spec, 12, n_x=2, n_y=3, sigmas={"W": 1.2}, seed=4)
    weights = torch.randn(17, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grads = [torch.autograd.grad((net.markov_parameters(17, method) * weights).sum(), list(net.parameters()))
             for method in ("fast", "chain")]
    for a, b in zip(*grads):
        assert relative(a, b) < 1e-10


def test_stack_of_networks_equals_each_network(block):
    nets = [LinearRNN(Spec(convention="B"), 10, n_x=2, sigmas={"W": w, "F": 0.5 + w}, seed=s)
            for s, w in enumerate((0.5, 1.0, 1.5))]
    stack = LinearRNN.stack(nets)
    assert stack.members == 3 and stack.W.shape == (3, 10, 10)
    L = stack.markov_parameters(9)
    weights = torch.randn(3, 9, 1, 2, dtype=torch.float64)
    stacked_grads = torch.autograd.grad((L * weights).sum(), list(stack.parameters()))
    for k, net in enumerate(nets):
        own = net.markov_parameters(9)
        assert per_lag(L[k], own) < 1e-10
        for a, b in zip(stacked_grads, torch.autograd.grad((own * weights[k]).sum(), list(net.parameters()))):
            assert relative(a[k], b) < 1e-10
    with pytest.raises(Exception, match="one spec"):
        LinearRNN.stack([nets[0], LinearRNN(Spec(), 10, n_x=2)])


@pytest.mark.parametrize("batch,T,lags,n_x,n_y", [(3, 1, 1, 1, 1), (4, 9, 9, 2, 3), (2, 100, 100, 1, 1),
                                                  (2, 50, 70, 2, 1), (2, 70, 50, 1, 2)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_fft_convolution_equals_the_direct_sum(batch, T, lags, n_x, n_y, dtype):
    g = torch.Generator().manual_seed(T)
    x = torch.randn(batch, T, n_x, dtype=torch.float64, generator=g)
    L = torch.randn(lags, n_y, n_x, dtype=torch.float64, generator=g) * 1.05 ** torch.arange(lags)[:, None, None]
    direct = causal_convolution(L, x, "direct")
    assert direct.shape == (batch, T, n_y)
    fft = causal_convolution(L.to(dtype), x.to(dtype), "fft").double()
    assert float((fft - direct).abs().max() / direct.abs().max()) < TOLERANCE[dtype]
    # Leading dimensions are independent problems.
    stacked = causal_convolution(torch.stack([L, 2 * L]), torch.stack([x, x.flip(1)]), "fft")
    assert relative(stacked[1], causal_convolution(2 * L, x.flip(1), "direct")) < 1e-10


def test_predict_uses_the_raw_inputs_for_long_sequences():
    x = white_noise_data(3, 80, 1, torch.Generator().manual_seed(0))
    X = design_matrix(x, "seq2seq")
    L = torch.randn(80, 1, 1, dtype=torch.float64)
    assert relative(predict(X, L, x), predict(X, L)) < 1e-12
    assert torch.equal(predict(X[:, -1:], L, x), predict(X[:, -1:], L))  # seq2one: one position, no FFT


@pytest.mark.parametrize("n_x,n_y", [(1, 1), (2, 3)])
def test_structured_gram_for_long_lags_and_in_slices(n_x, n_y, monkeypatch):
    net = LinearRNN(Spec(convention="B"), 8, n_x=n_x, n_y=n_y, sigmas={"W": 1.1}, seed=0)
    generic = generic_tangent_gram(net, 24, method="chain")
    assert relative(structured_tangent_gram(net, 24), generic) < 1e-10
    monkeypatch.setattr(ntk_module, "SLICE_ENTRIES", 1)  # one power per slice
    assert relative(structured_tangent_gram(net, 24), generic) < 1e-10


def test_structured_gram_has_no_width_squared_by_lags_tensor():
    width, lags = 256, 32
    net = LinearRNN(Spec(), width, seed=0)
    structured_tangent_gram(net, lags)
    with torch.profiler.profile(profile_memory=True) as profile:
        structured_tangent_gram(net, lags)
    largest = max(event.cpu_memory_usage for event in profile.key_averages())
    assert largest < width * width * lags * 8 / 8, largest  # at most an eighth of one n²·lags tensor


def test_scaled_convolution_gram_is_the_generic_one():
    alpha = torch.rand(3, 6, dtype=torch.float64) + 0.1
    L0 = torch.randn(3, 6, 2, 3, dtype=torch.float64)
    stacked = ScaledConvolution(alpha, L0)
    for k in range(3):
        single = ScaledConvolution(alpha[k], L0[k])
        assert torch.equal(single.tangent_gram(5), generic_tangent_gram(single, 5))
        assert torch.equal(stacked.tangent_gram(5)[k], single.tangent_gram(5))


def test_adam_step_is_torch_adam():
    g = torch.Generator().manual_seed(0)
    start = torch.randn(2, 5, dtype=torch.float64, generator=g)
    grads = [torch.randn(2, 5, dtype=torch.float64, generator=g) for _ in range(4)]
    lrs = [0.1, 0.03]
    mine, state = start.clone(), {}
    for grad in grads:
        mine -= adam_step(mine, grad, state, torch.tensor(lrs, dtype=torch.float64)[:, None])
    for k, lr in enumerate(lrs):
        param = torch.nn.Parameter(start[k].clone())
        optimizer = torch.optim.Adam([param], lr=lr)
        for grad in grads:
            param.grad = grad[k].clone()
            optimizer.step()
        torch.testing.assert_close(mine[k], param.detach(), rtol=1e-13, atol=1e-15)


def _assert_same_result(a, b, path=""):
    """Equal keys and order; lists of numbers equal to 1e-10 of their largest finite entry, NaN where NaN."""
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            _assert_same_result(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list) and a and isinstance(a[0], float):
        scale = max((abs(v) for v in a if math.isfinite(v)), default=1.0) or 1.0
        for u, v in zip(a, b, strict=True):
            assert u == v or math.isnan(u) and math.isnan(v) or abs(u - v) <= 1e-10 * scale, (path, u, v)
    elif isinstance(a, list):
        assert a == b, path
    elif isinstance(a, float):
        assert abs(a - b) <= 1e-10 * abs(a), path
    else:
        assert a == b, path


def _assert_same_failure(a: TrainingDiverged, b: TrainingDiverged):
    assert (a.trainer, a.step) == (b.trainer, b.step) and a.loss == pytest.approx(b.loss, rel=1e-8)
    assert list(a.curves) == list(b.curves)
    for trainer in a.curves:
        assert relative(a.curves[trainer]["responses"], b.curves[trainer]["responses"]) < 1e-10
        _assert_same_result({k: v for k, v in a.curves[trainer].items() if k != "responses"},
                            {k: v for k, v in b.curves[trainer].items() if k != "responses"})


def test_ensemble_equals_separate_runs(monkeypatch):
    base = dict(width=12, steps=12, samples=6, length=9, test_samples=20)
    configs = [
        dict(base, teacher="decay:0.5", sigma_w=0.5, seed=0, task="seq2seq", optimizer="sgd", kernel="empirical"),
        dict(base, teacher="decay:0.9", sigma_w=1.2, seed=1, task="seq2seq", optimizer="sgd", kernel="empirical"),
        dict(base, teacher="delay:2", sigma_w=0.7, seed=2, center=True, lazy_scale=2.0),
        dict(base, teacher="decay:0.7", sigma_w=0.6, seed=0, teacher_seed=3, task="seq2seq", optimizer="sgd",
             kernel="empirical", lr=0.05),
        dict(base, teacher="resonant:0.9,0.5", sigma_w=1.0, seed=4, center=True, lazy_scale=2.0),
        dict(base, teacher="lti:3", sigma_w=0.9, seed=5, optimizer="adam", lr=0.02, spec=Spec(convention="B")),
        dict(base, teacher="decay:0.8", sigma_w=0.4, seed=6, optimizer="adam", lr=0.01, spec=Spec(convention="B")),
        dict(teacher="decay:0.6", width=1, steps=5, samples=3, length=1, test_samples=5, seed=7),
        dict(teacher="decay:0.6", width=1, steps=5, samples=3, length=1, test_samples=5, seed=8, sigma_w=1.5),
    ]
    calls = []
    monkeypatch.setattr(compare_module, "ENSEMBLE_CPU_BYTES", 2 * 12 * 12 * 8)  # at most two per stack
    many = compare_training_many([white_noise_run(**c) for c in configs], progress=lambda *args: calls.append(args))
    assert len(calls) == sum(2 * (c["steps"] + 1) for c in configs)  # one call per trainer, step and run
    for config, result in zip(configs, many):
        _assert_same_result(compare_training(*white_noise_run(**config)), result)
    assert ensemble_size(12, torch.float64, torch.device("cpu")) == 2


def test_a_diverging_member_is_reported_and_the_others_finish():
    base = dict(width=16, steps=30, samples=8, length=10, test_samples=10, kernel="empirical")
    configs = [dict(base, teacher="decay:0.5", seed=0), dict(base, teacher="decay:0.5", sigma_w=1.5, lr=50.0, seed=0),
               dict(base, teacher="decay:0.8", seed=1)]
    outcomes = compare_training_many([white_noise_run(**c) for c in configs])
    error = outcomes[1]
    assert isinstance(error, TrainingDiverged) and "convolution training diverged" in str(error)
    with pytest.raises(TrainingDiverged) as single:
        compare_training(*white_noise_run(**configs[1]))
    _assert_same_failure(error, single.value)
    for k in (0, 2):
        _assert_same_result(compare_training(*white_noise_run(**configs[k])), outcomes[k])


def test_training_losses_per_member():
    # half_mse keeps one value per problem when given a stack.
    X = torch.randn(3, 4, 2, 5, 1, dtype=torch.float64)
    L = torch.randn(3, 5, 1, 1, dtype=torch.float64)
    y = torch.randn(3, 4, 2, 1, dtype=torch.float64)
    per_member = half_mse(X, L, y)
    assert per_member.shape == (3,)
    for k in range(3):
        assert float(per_member[k]) == pytest.approx(float(half_mse(X[k], L[k], y[k])), rel=1e-14)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fast_paths_on_gpu():
    net = LinearRNN(Spec(), 64, sigmas={"W": 1.1}, seed=0)
    gpu = LinearRNN(Spec(), 64, sigmas={"W": 1.1}, seed=0, device="cuda")
    assert per_lag(gpu.markov_parameters(100).cpu(), net.markov_parameters(100)) < 1e-10
    x = torch.randn(3, 100, 1, dtype=torch.float64)
    assert relative(gpu.forward_convolution(x.cuda()).cpu(), net(x)) < 1e-10
    for config in ({"teacher": "decay:0.8", "width": 32, "steps": 5, "seed": s} for s in range(2)):
        cpu_run = compare_training(*white_noise_run(**config))
        gpu_run = compare_training(*white_noise_run(**config, device="cuda"))
        assert gpu_run["final"]["test_error_rnn"] == pytest.approx(cpu_run["final"]["test_error_rnn"], rel=1e-8)
    assert _ImpulseResponse is not None
