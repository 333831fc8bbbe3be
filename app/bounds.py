"""What a code and a year look like: one definition for the bundle format, the query
parameters, the paths and the write bodies."""

CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
REGION_CODE_PATTERN = r"^[0-9]{6}$"  # GB/T 2260
MIN_YEAR, MAX_YEAR = 1949, 2100  # the founding of the People's Republic; far enough ahead
