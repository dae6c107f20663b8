"""The smoke snapshot's comparison: floats within rounding, a paired table's differences at
their operands' precision, anything else exactly."""

from __future__ import annotations

from .smoke_golden import differences

CSV = "metric,mean_diff,seeds,significant\nppl,-2.017984797,1,False\n"


def test_a_paired_difference_is_compared_at_its_operands_precision_and_the_rest_tightly():
    amd = CSV.replace("-2.017984797", "-2.018931306")  # the same run on another CPU
    assert differences({"t_paired.csv": CSV}, {"t_paired.csv": amd}) == []
    assert differences({"t.csv": CSV}, {"t.csv": amd}) != []  # not a paired table: RTOL 1e-4
    moved = CSV.replace("-2.017984797", "-2.1")
    assert differences({"t_paired.csv": CSV}, {"t_paired.csv": moved}) != []
    flipped = CSV.replace("False", "True")
    assert differences({"t_paired.csv": CSV}, {"t_paired.csv": flipped}) != []
