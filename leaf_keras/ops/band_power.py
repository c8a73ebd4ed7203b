"""The decimated band power of the band-limited Gabor filterbank.

`band_power` returns `|inverse DFT(x * g)|^2` of band spectra, i.e. the
squared modulus of a band-pass filter's output at a decimated rate, with a
written-out gradient that needs one more DFT per band.
"""

from keras import ops

from leaf_keras.ops import precision


@ops.custom_gradient
def band_power(x_real, x_imag, g_real, g_imag):
    """`|L * inverse DFT(x * g)|^2` over the last axis, with a lean gradient.

    Args:
        x_real, x_imag: band spectra of the signal blocks, `(n, rows, L)`
            (filters major, the layout the pooling wants, so that no pass
            transposes the large tensors).
        g_real, g_imag: band spectra of the filters, `(n, L)`.

    Returns:
        `(n, rows, L)`: `L^2 |y|^2`, with `y` the length-L inverse DFT of the
        product (the decimated filter outputs). The gradient keeps the
        transformed products of the forward pass (twice the output's size):
        the DFTs are most of the engine's time, and recomputing them would
        cost a third more.
    """
    g_re, g_im = g_real[:, None, :], g_imag[:, None, :]

    def conjugate_products(x_re, x_im):
        # conj(x g): a forward DFT of the conjugate is L times the conjugate
        # of the inverse DFT, the time samples in their natural order.
        return (x_re * g_re - x_im * g_im, -x_re * g_im - x_im * g_re)

    out_real, out_imag = ops.fft(conjugate_products(x_real, x_imag))
    power = ops.square(out_real) + ops.square(out_imag)

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        # out = F conj(y), d power / d out = 2 out, and the adjoint of the
        # DFT F is F^H, so d y = conj(F^H (2 out dp)) = F(conj(2 out dp)).
        d_real, d_imag = ops.fft((2.0 * out_real * upstream, -2.0 * out_imag * upstream))
        # The filter spectra are broadcast over rows: sum their gradient.
        grad_g_real = ops.sum(d_real * x_real + d_imag * x_imag, axis=1)
        grad_g_imag = ops.sum(d_imag * x_real - d_real * x_imag, axis=1)
        grad_x_real = d_real * g_re + d_imag * g_im
        grad_x_imag = d_imag * g_re - d_real * g_im
        return grad_x_real, grad_x_imag, grad_g_real, grad_g_imag

    return power, precision.keeps_float64_gradient(grad, x_real)
