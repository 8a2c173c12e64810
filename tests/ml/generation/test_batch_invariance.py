"""The kernel properties cross-job batching rests on, checked on the machine that runs the tests: inside
batch_invariant, an image's values (a row of a linear layer, an image of a convolution) have the same
bits whatever else is in the batch."""

import pytest
import torch
import torch.nn.functional as F

from enchant_worker.generation.batch_invariance import batch_invariant

# The UNet's shapes: time embedding (320 -> 1280), its projections into the blocks, attention and the
# tiny model's own small widths.
LINEARS = [(32, 128), (128, 128), (320, 1280), (1280, 320), (768, 640)]
# (in, out, size, kernel, stride): the tiny model's and SD 1.5's convolutions (the 640 one without bias)
CONVS = [
    (4, 32, 8, 3, 1),
    (32, 64, 8, 3, 2),
    (64, 64, 16, 3, 1),
    (64, 32, 16, 1, 1),
    (320, 640, 8, 1, 1),
    (320, 320, 32, 3, 1),
]


def test_each_row_of_a_linear_layer_has_the_same_bits_at_every_row_count():
    torch.manual_seed(0)
    for k, n in LINEARS:
        weight, bias, x = torch.randn(n, k), torch.randn(n), torch.randn(300, k)
        with batch_invariant(), torch.inference_mode():
            everything = F.linear(x, weight, bias)
            assert torch.allclose(everything, torch.addmm(bias, x, weight.t()), atol=1e-4)
            for rows in [*range(1, 40), 64, 100, 256]:
                assert torch.equal(F.linear(x[:rows], weight, bias), everything[:rows]), (k, n, rows)
            # leading batch dimensions are rows too
            assert torch.equal(
                F.linear(x[:6].reshape(2, 3, k), weight, bias), everything[:6].reshape(2, 3, n)
            )


@pytest.mark.parametrize("threads", [1, 2])  # torch picks a 1x1 kernel's backend by the thread count
def test_each_image_of_a_convolution_has_the_same_bits_at_every_batch_size(threads):
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for c_in, c_out, size, kernel, stride in CONVS:
            conv = torch.nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=c_out != 640)
            x = torch.randn(18, c_in, size, size)
            with torch.inference_mode():
                expected = conv(x)  # torch's own path
            with batch_invariant(), torch.inference_mode():
                everything = conv(x)
                assert torch.allclose(everything, expected, atol=1e-4)
                for start, stop in [(0, 1), (3, 4), (0, 2), (1, 4), (2, 5), (0, 16)]:
                    assert torch.equal(conv(x[start:stop]), everything[start:stop]), (
                        c_in,
                        c_out,
                        start,
                        stop,
                    )
    finally:
        torch.set_num_threads(before)


def test_the_functions_are_replaced_only_inside_the_scope_and_gradients_flow():
    real = F.linear, F.conv2d
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8, requires_grad=True)
    with batch_invariant(), batch_invariant():  # nested, as two threads' calls overlap
        assert (F.linear, F.conv2d) != real
        out = layer(x)
    assert (F.linear, F.conv2d) == real
    assert out.shape == (2, 4)
    out.sum().backward()
    assert torch.allclose(x.grad, layer.weight.sum(0).expand(2, 8))
