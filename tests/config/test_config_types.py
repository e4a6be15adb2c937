"""A value of the wrong kind is one line naming the key and what it accepts, in TOML's words: never pydantic's
internal types ("an instance of SecretRef", "<class 'pathlib.Path'>") nor a union member's name in the key path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

COLOURS = 'blue = { name = "b", host_port = 1 }\ngreen = { name = "g", host_port = 2 }\n'

CASES = [
    # the unions: a database URL or container variable is a literal string or a reference
    ('[target]\nurl = 5\n',
     'golive.toml:2: target.url: expected a string: the URL (without a password), or a reference "env:NAME" /'
     ' "file:PATH"; not an integer'),
    ('[target]\nurl = { env = "TARGET_DATABASE_URL" }\n',
     'golive.toml:2: target.url: expected a string: the URL (without a password), or a reference "env:NAME" /'
     ' "file:PATH"; not a table'),
    ('[source]\nurl = ["sqlite:///old.db"]\n',
     'golive.toml:2: source.url: expected a string: the URL (without a password), or a reference "env:NAME" /'
     ' "file:PATH"; not an array'),
    (f'[containers]\nimage = "x"\nenv = {{ WORKERS = 4 }}\n{COLOURS}',
     'golive.toml:3: containers.env.WORKERS: expected a string: the value in quotes (NAME = "1", not NAME = 1), or a'
     ' reference "env:NAME" / "file:PATH"; not an integer'),
    # a secret reference
    ('[linode]\ntoken = { env = "LINODE_TOKEN" }\n',
     'golive.toml:2: linode.token: expected a string: a reference "env:NAME" or "file:PATH"; not a table'),
    # a table, a path, an array of the wrong kind
    ('linode = 5\n', "golive.toml:1: linode: expected a table, not an integer"),
    ('[containers]\nimage = "x"\nblue = 8001\ngreen = { name = "g", host_port = 2 }\n',
     "golive.toml:3: containers.blue: expected a table, not an integer"),
    ('[sync]\nmedia = ["/srv/media"]\n', "golive.toml:2: sync.media[0]: expected a table, not a string"),
    ('[project]\nstate_dir = 5\n',
     'golive.toml:2: project.state_dir: expected a path (a string, e.g. "/srv/app"), not an integer'),
    ('[sync]\nmedia = [{ from = 5, to = "/x" }]\n',
     'golive.toml:2: sync.media[0].from: expected a path (a string, e.g. "/srv/app"), not an integer'),
    ('[proxy]\nupstream_file = "u"\npublic_url = "http://x"\ntest_command = "apachectl configtest"\n',
     "golive.toml:4: proxy.test_command: expected an array, not a string"),
    ('[[verify.checks]]\nname = "a"\nurl = "http://x"\nexpect_body = 200\n',
     "golive.toml:4: verify.checks[0].expect_body: expected a string, not an integer"),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_a_value_of_the_wrong_kind_names_the_key_and_what_it_accepts(project: Path, cli, text: str,
                                                                      message: str) -> None:
    (project / "golive.toml").write_text(text)
    result = cli("config", "check")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {message}\n"


def test_a_wrong_kind_never_shows_the_value_it_was_given(project: Path, cli) -> None:
    """The value may be the secret itself, written where a reference belongs."""
    (project / "golive.toml").write_text('[linode]\ntoken = { value = "s3cr3t-token-value" }\n')
    result = cli("config", "check")
    assert result.exit_code == 2
    assert "s3cr3t" not in result.stderr + result.stdout


class _Union(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | list[str]
    name: str = ""


def test_any_union_key_is_named_as_the_file_writes_it_with_the_kinds_it_accepts(tmp_path: Path) -> None:
    """Every union golive.toml has now says what it takes in its own validator; one added later without that
    still gets a line naming the key (not `limit.list[str]`) and the kinds each member accepts."""
    from golive.config.loader import _rendered

    text = 'name = "x"\nlimit = 1.5\n'
    data = tomllib.loads(text)
    with pytest.raises(ValidationError) as caught:
        _Union.model_validate(data)
    assert _rendered(caught.value, text, data, _Union, Path("golive.toml")) == (
        "golive.toml:2: limit: expected an integer or an array, not a number")
