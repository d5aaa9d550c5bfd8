from ethos.errors import USER_ERROR_EXIT_CODE, ConfigError, EthosError


def test_hint_is_part_of_the_message() -> None:
    err = ConfigError("config x.yaml is empty", hint="start from `ethos init`")
    assert isinstance(err, EthosError)
    assert str(err) == "config x.yaml is empty\n  fix: start from `ethos init`"
    assert USER_ERROR_EXIT_CODE == 2
