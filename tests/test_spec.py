"""RNNSpec: validation of every field, exact parsing, replace() and to_dict()."""
from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.spec import CONVENTIONS, METRICS, RNNSpec, SpecError

SCALE_FIELDS = ("sigma_w", "sigma_f", "sigma_c", "sigma_d", "lr_w", "lr_f", "lr_c", "lr_d")

BAD_SCALES = [
    (-1, ">= 0"),
    ("-0.5", ">= 0"),
    (float("nan"), "finite"),
    (float("inf"), "finite"),
    ("nan", "finite"),
    ("-inf", "finite"),
    ("abc", "must be a number"),
    ("", "must be a number"),
    (True, "must be a number"),
    (None, "must be a number"),
    ([1], "must be a number"),
    (Decimal("NaN"), "finite"),
]


@pytest.mark.parametrize("field", SCALE_FIELDS)
@pytest.mark.parametrize("value, fragment", BAD_SCALES)
def test_bad_scale_names_the_field(field, value, fragment):
    if field == "sigma_d" and value is None:
        pytest.skip("sigma_d=None means: no D")
    kwargs = {"sigma_w": "0.5", field: value}
    with pytest.raises(SpecError) as info:
        RNNSpec(**kwargs)
    msg = str(info.value)
    assert msg.startswith(field), msg
    assert fragment in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("field", ["n_x", "n_y"])
@pytest.mark.parametrize("value", [0, -3, 1.5, "2", True, None])
def test_bad_dimension_names_the_field(field, value):
    with pytest.raises(SpecError, match=f"^{field} must be a positive integer"):
        RNNSpec(sigma_w="0.5", **{field: value})


def test_numpy_integer_dimensions_accepted():
    np = pytest.importorskip("numpy")
    s = RNNSpec(sigma_w="0.5", n_x=np.int64(3))
    assert s.n_x == 3 and type(s.n_x) is int


@pytest.mark.parametrize("value", ["NTK", "foo", "", None, 1])
def test_bad_metric(value):
    with pytest.raises(SpecError, match="^metric must be one of ntk, variance, standard"):
        RNNSpec(sigma_w="0.5", metric=value)


@pytest.mark.parametrize("value", ["conv3", "CONV1", None])
def test_bad_convention(value):
    with pytest.raises(SpecError, match="^convention must be one of conv1, conv2"):
        RNNSpec(sigma_w="0.5", convention=value)


def test_sigma_w_is_required():
    with pytest.raises(TypeError):
        RNNSpec()  # type: ignore[call-arg]


def test_spec_error_is_value_error():
    assert issubclass(SpecError, ValueError)


# ---------------------------------------------------------------- exact parsing
def test_decimal_strings_are_exact():
    s = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c=" 0.7 ", sigma_d="1e-3", lr_w="2/3")
    assert s.sigma_w == Fraction(9, 10)
    assert s.sigma_f == Fraction(13, 10)
    assert s.sigma_c == Fraction(7, 10)
    assert s.sigma_d == Fraction(1, 1000)
    assert s.lr_w == Fraction(2, 3)
    assert all(isinstance(getattr(s, f), Fraction) for f in SCALE_FIELDS)


def test_float_is_its_binary_value_not_the_decimal():
    s = RNNSpec(sigma_w=0.9)
    assert s.sigma_w == Fraction(0.9) != Fraction(9, 10)
    assert s.sigma_w.denominator == 2**53  # 0.9 = 8106479329266893 / 2^53
    assert RNNSpec(sigma_w=Decimal("0.9")).sigma_w == Fraction(9, 10)


@given(st.integers(0, 10**12), st.integers(0, 15))
def test_decimal_text_parses_exactly(mantissa, exponent):
    text = f"{mantissa}e-{exponent}"
    assert RNNSpec(sigma_w=text).sigma_w == Fraction(mantissa, 10**exponent)
    digits = str(mantissa).rjust(exponent + 1, "0")
    point = digits[: len(digits) - exponent] + "." + digits[len(digits) - exponent:] if exponent else digits
    assert RNNSpec(sigma_w=point).sigma_w == Fraction(mantissa, 10**exponent)


def test_zero_scales_are_allowed():
    s = RNNSpec(sigma_w=0, sigma_f="0", lr_c=0, sigma_d=0)
    assert s.sigma_w == 0 and s.sigma_f == 0 and s.lr_c == 0 and s.sigma_d == 0
    assert s.has_d  # sigma_d = 0 is a present (zero) D, unlike None


# ---------------------------------------------------------------- helpers, replace, to_dict
def test_groups_and_accessors():
    s = RNNSpec(sigma_w="0.5", sigma_f=2, sigma_c=3, lr_f="0.25")
    assert s.groups == ("C", "F", "W") and not s.has_d
    assert s.sigma("D") == 0 and s.sigma("F") == 2 and s.lr("F") == Fraction(1, 4)
    d = s.replace(sigma_d="0.5")
    assert d.groups == ("C", "F", "W", "D") and d.sigma("D") == Fraction(1, 2)


def test_frozen():
    s = RNNSpec(sigma_w="0.5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.sigma_w = Fraction(1)  # type: ignore[misc]


def test_replace_validates_and_leaves_the_original():
    s = RNNSpec(sigma_w="0.5", metric="variance")
    t = s.replace(sigma_w="0.25", convention="conv2")
    assert t.sigma_w == Fraction(1, 4) and t.convention == "conv2" and t.metric == "variance"
    assert s.sigma_w == Fraction(1, 2) and s.convention == "conv1"
    with pytest.raises(SpecError, match="^sigma_w must be >= 0"):
        s.replace(sigma_w=-1)
    with pytest.raises(SpecError, match="unknown field.*bogus"):
        s.replace(bogus=1)
    assert s.replace() == s


fractions = st.fractions(min_value=0, max_value=10, max_denominator=10**6)
specs = st.builds(
    RNNSpec,
    sigma_w=fractions,
    sigma_f=fractions,
    sigma_c=fractions,
    sigma_d=st.none() | fractions,
    n_x=st.integers(1, 5),
    n_y=st.integers(1, 5),
    metric=st.sampled_from(METRICS),
    convention=st.sampled_from(CONVENTIONS),
    lr_w=fractions,
    lr_f=fractions,
    lr_c=fractions,
    lr_d=fractions,
)


@given(specs)
def test_to_dict_round_trips_exactly(spec):
    d = spec.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(RNNSpec)}
    for name in SCALE_FIELDS:
        if getattr(spec, name) is not None:
            assert isinstance(d[name], str)
    assert RNNSpec(**d) == spec


def test_to_dict_text():
    d = RNNSpec(sigma_w="0.9", sigma_f="1/3", sigma_c=0.5, lr_w="1e-40").to_dict()
    assert d["sigma_w"] == "0.9"
    assert d["sigma_f"] == "1/3"
    assert d["sigma_c"] == "0.5"
    assert d["sigma_d"] is None
    assert Fraction(d["lr_w"]) == Fraction(1, 10**40)
    assert d["metric"] == "ntk" and d["convention"] == "conv1" and d["n_x"] == 1
    # a float's exact binary value survives as a terminating decimal
    assert Fraction(RNNSpec(sigma_w=0.1).to_dict()["sigma_w"]) == Fraction(0.1)


def test_float64_rounds_and_rejects_overflow():
    spec = RNNSpec(sigma_w="0.9", sigma_c="1e400")
    assert spec.float64("sigma_w") == 0.9
    assert spec.float64("sigma_d") == 0.0  # absent D
    with pytest.raises(SpecError, match="sigma_c = .* does not fit in float64"):
        spec.float64("sigma_c")
