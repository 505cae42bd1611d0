"""The linear RNN: its definition, its two forward paths, its seeding and its devices."""
import pytest
import torch

from derivations.spec import Spec
from numerics import LinearRNN, NumericsError
from numerics.device import resolve_device, resolve_dtype
from numerics.models.linear import _ImpulseResponse

SPECS = [
    Spec(),
    Spec(convention="B"),
    Spec(feedthrough=False),
    Spec(param="standard", convention="B", trained=("W", "C"), rates=(("W", "3"),)),
]
SIGMAS = {"W": 0.9, "F": 1.2, "C": 0.8, "D": 0.7}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.digest())
def test_markov_parameters_are_the_definition(spec):
    model = LinearRNN(spec, 12, n_x=2, n_y=3, sigmas=SIGMAS, seed=1)
    W, F, C, D = model.matrices()
    power = lambda p: torch.linalg.matrix_power(W, p)  # noqa: E731 - the definition, not the fast path
    expected = [C @ power(j - spec.input_lag) @ F if j >= spec.input_lag else torch.zeros(3, 2, dtype=W.dtype)
                for j in range(6)]
    if spec.feedthrough:
        expected[0] = expected[0] + D
    torch.testing.assert_close(model.markov_parameters(6), torch.stack(expected), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.digest())
def test_recurrence_equals_convolution(spec):
    model = LinearRNN(spec, 16, n_x=2, n_y=3, sigmas=SIGMAS, seed=2)
    x = torch.randn(5, 9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    recurrence, convolution = model(x), model.forward_convolution(x)
    assert recurrence.shape == (5, 9, 3)
    assert (recurrence - convolution).abs().max() <= 1e-12 * recurrence.abs().max()


@pytest.mark.parametrize("block", [1, 2, 4])
def test_impulse_response_gradient_matches_finite_differences(block):
    # The structured gradient of L_p = C (sW)^p F, plain chain and in blocks, against finite differences.
    W = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)
    F = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    C = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda W, F, C: _ImpulseResponse.apply(W, F, C, 0.7, 6, block)[0], (W, F, C))


def test_seed_fixes_the_weights():
    a, b = (LinearRNN(Spec(), 32, sigmas=SIGMAS, seed=7) for _ in range(2))
    c = LinearRNN(Spec(), 32, sigmas=SIGMAS, seed=8)
    single = LinearRNN(Spec(), 32, sigmas=SIGMAS, seed=7, dtype=torch.float32)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name])
        assert not torch.equal(tensor, c.state_dict()[name])
        assert torch.equal(tensor.float(), single.state_dict()[name])  # drawn in float64, then rounded


def test_parameterizations_and_rates():
    spec = Spec(trained=("W", "C"), rates=(("W", "3"),))
    ntk = LinearRNN(spec, 64, sigmas=SIGMAS, seed=0)
    assert [n for n, _ in ntk.named_parameters()] == ["W", "C"]
    assert [n for n, _ in ntk.named_buffers()] == ["F", "D"]
    assert {g["block"]: g["lr"] for g in ntk.param_groups(0.1)} == pytest.approx({"W": 0.3, "C": 0.1})
    standard = LinearRNN(Spec(param="standard", trained=("W", "C"), rates=(("W", "3"),)), 64, sigmas=SIGMAS, seed=0)
    assert {g["block"]: g["lr"] for g in standard.param_groups(0.1)} == pytest.approx({"W": 0.3 / 64, "C": 0.1 / 64})
    # Same draw, two parameterizations: the effective matrices coincide.
    for a, b in zip(ntk.matrices(), standard.matrices()):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=0)


def test_sigmas_must_name_blocks():
    with pytest.raises(NumericsError, match="unknown blocks"):
        LinearRNN(Spec(), 8, sigmas={"V": 1.0})


def test_devices_and_dtypes():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(NumericsError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_dtype("float32") is torch.float32 and resolve_dtype(torch.float64) is torch.float64
    with pytest.raises(NumericsError, match="unknown dtype"):
        resolve_dtype("float16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_cuda_without_gpu_is_an_error():
    with pytest.raises(NumericsError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_network_on_gpu():
    cpu = LinearRNN(Spec(convention="B"), 64, sigmas=SIGMAS, seed=3)
    gpu = LinearRNN(Spec(convention="B"), 64, sigmas=SIGMAS, seed=3, device="cuda")
    torch.testing.assert_close(gpu.markov_parameters(20).cpu(), cpu.markov_parameters(20), rtol=1e-10, atol=1e-12)
    x = torch.randn(3, 10, 1, dtype=torch.float64)
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-10, atol=1e-12)
