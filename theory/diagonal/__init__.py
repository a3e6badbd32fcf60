"""Wide-limit lag kernels of diagonal complex linear recurrences (LRU, S4D), exactly.

Model (scalar input and output, conv1 indexing; docs/theory.md, section
"Diagonal recurrences (LRU, S4D)")::

    h_(j,t) = lambda_j h_(j,t-1) + g_j B_j x_t,     y_t = sum_j Re(C_j h_(j,t)) + D x_t
    lambda_j = exp(-exp(nu_j) + i exp(theta_j)),     g_j = exp(gamma_j)
    L_l = sum_j Re(C_j g_j B_j lambda_j^l) + D [l = 0]

The package, by what each module computes (every public name is re-exported here):

* :mod:`theory.diagonal.spec`: :class:`DiagonalSpec` (eigenvalue law, scales,
  scaling, learning rates; exact rationals) and :func:`parse_phase`;
* :mod:`theory.diagonal.expectations`: the expectations over the eigenvalue law
  that the kernels are made of (``P0``, ``P2``, ``P2_shifted``, ``c0``, ``c2``,
  ``tied_nu_integral``), in closed form with cancellation control;
* :mod:`theory.diagonal.lru`: the LRU's limit lag kernel by trained group
  (:func:`lag_kernel`) and its diagonal at any lags (:func:`lag_kernel_diagonal`);
* :mod:`theory.diagonal.s4d`: S4D's deterministic spectra and the C share of its
  lag kernel;
* :mod:`theory.diagonal.implicit_bias`: the ``Theta^-1``-metric minimum-norm
  interpolant that gradient descent reaches with a lag kernel
  (:func:`implicit_bias_solution`, solved by :func:`theory.bias.min_norm_solve`);
* :mod:`theory.diagonal.render`: decimal text of the kernels (:func:`to_strings`).

Every public function works in a local context (:func:`theory.precision.context`)
and returns numbers accurate to the requested digits (closed forms: guard
bits adapted to the measured cancellation; quadrature: guarded precision and
its error estimate checked).
"""
from theory.diagonal.expectations import P0, P2, P2_shifted, c0, c2, tied_nu_integral
from theory.diagonal.implicit_bias import implicit_bias_solution
from theory.diagonal.lru import DiagonalKernel, lag_kernel, lag_kernel_diagonal
from theory.diagonal.render import to_strings
from theory.diagonal.s4d import S4D_KINDS, s4d_c_share, s4d_c_share_diagonal, s4d_spectrum
from theory.diagonal.spec import DIAGONAL_GROUPS, SCALINGS, DiagonalSpec, parse_phase

__all__ = [
    "DiagonalSpec",
    "DIAGONAL_GROUPS",
    "SCALINGS",
    "parse_phase",
    "P0",
    "P2",
    "P2_shifted",
    "c0",
    "c2",
    "tied_nu_integral",
    "DiagonalKernel",
    "lag_kernel",
    "lag_kernel_diagonal",
    "S4D_KINDS",
    "s4d_spectrum",
    "s4d_c_share",
    "s4d_c_share_diagonal",
    "implicit_bias_solution",
    "to_strings",
]
