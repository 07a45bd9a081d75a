"""Where the signing key comes from: the environment variable named in signing.secret_env, else a
private file in the state folder made once (key_warning says why production should not rely on it).
Raises ConfigError."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..files import make_private_dir

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"
_MIN_KEY_CHARS = 16
_warned_lock = threading.Lock()
_warned: set[str] = set()


def config_key(config: "Config") -> bytes:
    """Return the signing key: $signing.secret_env when set, else <state>/secret.key (made once);
    raises ConfigError when the key file cannot be read or made."""
    env_name = config.signing.secret_env
    value = os.environ.get(env_name) if env_name else None
    if value:
        if len(value) < _MIN_KEY_CHARS:
            _warn_once(f"short:{env_name}", f"{env_name} is shorter than {_MIN_KEY_CHARS} "
                       "characters: anyone who guesses it can forge unsubscribe links")
        return value.encode("utf-8")
    path = Path(config.state_dir(KEY_FILE))
    # Said once where links are checked (`serve`, `run`: see key_warning), not by every command.
    log.debug("signing links with the key in %s (%s is not set)", path, env_name or "no variable named")
    return _file_key(path)


def key_warning(config: "Config") -> str:
    """Return the warning for a signing key kept in the state folder ("" when the key comes from
    the environment): links then break when that folder is lost or another host serves them."""
    env_name = config.signing.secret_env
    if env_name and os.environ.get(env_name):
        return ""
    path = Path(config.state_dir(KEY_FILE))
    return (f"environment variable {env_name or '(none named in signing.secret_env)'} is not set: "
            f"links are signed with the key in {path}; set it in production so links survive a lost "
            "state folder and several hosts agree")


def _file_key(path: Path) -> bytes:
    """Return the key stored in path, creating it once (mode 0600) with 32 random bytes; raises ConfigError."""
    try:
        data = path.read_bytes()
        if data.strip():
            return data.strip()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the signing key: {err}") from err
    try:
        make_private_dir(path.parent)
        # Write a private temp file, then link it into place: link() fails when another process
        # won the race, and then its key (complete, never half-written) is the one everyone uses.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_hex(32).encode("ascii"))
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_bytes().strip()
    except OSError as err:
        raise ConfigError(f"{path}: cannot create the signing key: {err}") from err


def _warn_once(key: str, message: str) -> None:
    """Log message as a warning the first time key is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("%s", message)
