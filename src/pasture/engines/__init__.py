"""Engine builds: the xllamacpp wheel Pasture installs with, plus builds compiled for this
machine or added from a wheel, and the choice between them for each runner
(`probe` what a build is, `builds` where they live, `choose` which one, `launch` start
and fall back, `build` compile one)."""
