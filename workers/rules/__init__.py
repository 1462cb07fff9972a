"""Rules as data: the shipped defaults, replaceable file by file from INTAKE_RULES_DIR."""
