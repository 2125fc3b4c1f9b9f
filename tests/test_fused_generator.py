"""The fused prompt generator (one matmul per layer) against its operator-by-operator path."""
import pytest
import torch

from vapt_mm.core import PromptGenerator

#: The reference grid, shrinking (anti-aliased), growing, and growing in one side only.
GRIDS = [(4, 4), (8, 6), (2, 3), (6, 3)]


def generator(kernel_size=2, padding=0, shared=True, dtype=torch.float32) -> PromptGenerator:
    torch.manual_seed(0)
    gen = PromptGenerator(8, 3, (4, 4), kernel_size, padding, shared, dropout=0.3)
    for param in gen.parameters():  # every parameter away from its initial value
        torch.nn.init.normal_(param, std=0.5)
    return gen.to(dtype).train()


def outputs_and_gradients(gen, path, patches, grid, upstream):
    torch.manual_seed(1)  # both paths draw the same Dropout2d masks from here
    x = patches.clone().requires_grad_()
    prompts = path(x, grid)
    return [prompts, *torch.autograd.grad((prompts * upstream).sum(), [x, *gen.parameters()])]


@pytest.mark.parametrize('dtype, tol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize('kernel_size, padding', [(2, 0), (3, 1)])
@pytest.mark.parametrize('grid', GRIDS)
def test_fused_path_equals_the_operator_path_with_dropout(dtype, tol, kernel_size, padding, grid):
    gen = generator(kernel_size, padding, dtype=dtype)
    patches = torch.randn(2, grid[0] * grid[1], 8, dtype=dtype)
    upstream = torch.randn(2, 3, 8, dtype=dtype)
    fused = outputs_and_gradients(gen, gen.forward, patches, grid, upstream)
    reference = outputs_and_gradients(gen, gen.forward_by_operator, patches, grid, upstream)
    names = ['prompts', 'patches', *(name for name, _ in gen.named_parameters())]
    for name, ours, theirs in zip(names, fused, reference):
        # LayerNorm's bias gradient sums over the positions with cancellation: in float32
        # the operator path itself is up to 2e-6 (of the largest entry) off the float64 value.
        limit = tol * (10 if name == 'norm.bias' and dtype == torch.float32 else 1)
        assert (ours - theirs).abs().max() <= limit * theirs.abs().max(), name
    with torch.no_grad():  # the masks did drop channels: the test sees them
        assert not torch.allclose(fused[0], gen.eval()(patches, grid))


@pytest.mark.parametrize('shared', [True, False])
@pytest.mark.parametrize('grid', GRIDS)
def test_position_weights_map_the_normalised_patches_to_the_prompts(shared, grid):
    gen = generator(3, 1, shared=shared, dtype=torch.float64).eval()
    patches = torch.randn(2, grid[0] * grid[1], 8, dtype=torch.float64)
    weights = gen.position_weights(grid)
    assert weights.shape == (1 if shared else 8, 3, grid[0] * grid[1])
    prompts = torch.einsum('cnj,bjc->bnc', weights.expand(8, -1, -1), gen.norm(patches))
    if not shared:
        assert torch.equal(gen(patches, grid), gen.forward_by_operator(patches, grid))
    expected = gen.forward_by_operator(patches, grid) - gen.token_map.bias[:, None]
    assert torch.allclose(prompts, expected, atol=1e-12, rtol=0)
    weights.sum().backward()  # differentiable in the kernel and the token map
    assert gen.conv.weight.grad.abs().sum() > 0 and gen.token_map.weight.grad.abs().sum() > 0


def test_parameters_and_state_dict_are_those_of_the_operator_path():
    gen = PromptGenerator(768, 10, (14, 14))
    assert {k: tuple(v.shape) for k, v in gen.state_dict().items()} == {
        'norm.weight': (768,), 'norm.bias': (768,), 'conv.weight': (1, 1, 2, 2),
        'token_map.weight': (10, 169), 'token_map.bias': (10,)}


def test_half_precision_resamples_without_the_missing_half_kernel():
    gen = generator().eval()
    patches = torch.randn(2, 48, 8)
    expected = gen(patches, (8, 6))
    half = gen.half()(patches.half(), (8, 6))
    assert half.dtype == torch.float16
    assert torch.allclose(half.float(), expected, atol=2e-2 * expected.abs().max().item())
