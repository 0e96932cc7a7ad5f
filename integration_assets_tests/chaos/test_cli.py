"""`integration-assets chaos` refuses what it cannot run in one line, before starting anything."""

from integration_assets.cli import main


def test_an_unknown_case_is_named_with_the_cases_there_are(capsys):
    assert main(["chaos", "--case", "kill_mid_load", "--case", "meteor_strike"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(
        "integration-assets chaos: unknown chaos case 'meteor_strike' (one of: "
    )
    assert "kill_mid_load" in error and error.count("\n") == 1


def test_a_negative_soak_is_refused(capsys):
    assert main(["chaos", "--soak-hours", "-1"]) == 2
    assert capsys.readouterr().err == "integration-assets chaos: --soak-hours must be 0 or more\n"
