"""The reporting service's rules: pure, no I/O and no framework (compliance, stars, periods, the hierarchy's
roll-up, the projection's decisions, certificate numbers, and the programme vocabulary it uses)."""
