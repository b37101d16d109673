"""The template as text: idiomatic where it reads naturally, with comments saying where
each translation that is not word for word came from.

A service whose compose name is what its image would name it (``redis: {image: redis:7}``)
is written with the image as its key (``redis:7:``); one with nothing but a command is
then that command as a string (``redis:7: redis-server --appendonly yes``). Values are
written with PyYAML (so quoting is PyYAML's, and reads back exactly); the comments and
the layout around them are written here, one service at a time.
"""

import shlex

import yaml
from voluptuous import Invalid

from ..model import schema
from ..errors import printable
from .interpolate import has_variables, template_text
from .network import Format

ORDER = ("image", "git", "cmd", "entrypoint", "env", "expose", "register", "ports", "volumes", "volume_driver",
         "volume_opts", "restart", "init", "stop_timeout", "user", "workdir", "labels", "memory", "cpus", "healthcheck",
         "privileged")
INLINE = {"cmd", "entrypoint", "ports", "volumes", "register"}


class _Inline(list):
    """A list written on one line (``[a, b]``)."""


class _InlineMap(dict):
    """A mapping written on one line (``{a: b}``)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Inline, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(_InlineMap, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))
_Dumper.add_representer(Format, lambda d, v: d.represent_str(str(v)))


def template(header, targets):
    """The whole template: header comment lines, then each service."""
    lines = [_comment(line) for line in header]
    keys = _service_keys(targets)
    for target in targets:
        lines += [""] + _service(target, keys[target.compose])
    return "\n".join(lines) + "\n"


def _service_keys(targets):
    """Each service's top-level key, and whether it is the image (which then names it)."""
    keys, taken = {}, {t.name for t in targets}
    for target in targets:
        as_image = _image_names_it(target) and (target.image == target.name or target.image not in taken)
        keys[target.compose] = (target.image if as_image else target.name), as_image
        taken.add(keys[target.compose][0])
    return keys


def _image_names_it(target):
    """Whether the image can be the key: it names the service, it holds no variable
    (keys are not filled in), and no expose format needs a key without a dot."""
    image = target.image
    if image is None or has_variables(image) or image[:1].isupper() or "git" in target.keys or len(image) > 100:
        return False
    if "." in image and any(isinstance(e, dict) for e in target.keys.get("expose", {}).values()):
        return False
    try:
        return schema.image_service_name(schema.image(image)) == target.name
    except Invalid:  # not an image reference deployer reads as a key
        return False


def _service(target, key_and_form):
    key, as_image = key_and_form
    lines = [_comment(line) for line in target.comments.get("", [])]
    body = {k: target.keys[k] for k in ORDER if k in target.keys and target.keys[k] not in ({}, [], None)}
    if target.image is not None and not as_image:
        body = {"image": target.image, **body}
    lone = _lone_command(target, body)
    if lone is not None:
        return lines + [_dump({key: lone})]
    if not body:
        return lines + [_dump({key: _InlineMap()})]
    lines.append(_dump({key: None}).removesuffix(" null"))
    for name, value in body.items():
        lines += ["  " + _comment(line) for line in target.comments.get(name, [])]
        lines += ["  " + line if line else line for line in _dump({name: _value(name, value)}).split("\n")]
    return lines


def _lone_command(target, body):
    """A service that is an image and a command: the command as a string, or None."""
    cmd = body.get("cmd")
    if set(body) != {"cmd"} or target.comments.get("cmd"):
        return None
    if isinstance(cmd, str):
        return template_text(cmd)
    if any(has_variables(word) for word in cmd):
        return None  # a variable's value could hold quotes: keep the words apart
    return shlex.join(template_text(word) for word in cmd)


def _value(name, value, nested=False):
    """Template text of every string (variables as ``{NAME}``), layout classes applied:
    one line for short lists and for the mappings inside env and expose."""
    if isinstance(value, Format):
        return value
    if isinstance(value, str):
        return template_text(value)
    if isinstance(value, dict):
        out = {k: _value(name, v, True) for k, v in value.items()}
        return _InlineMap(out) if name in INLINE or nested else out
    if isinstance(value, list):
        out = [_value(name, v, True) for v in value]
        return _Inline(out) if name in INLINE or nested else out
    return value


def _dump(data):
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=float("inf"),
                     default_flow_style=False)
    return text.rstrip("\n")


def _comment(line):
    """A comment line, whatever the compose file held: one line, control characters escaped."""
    return "# " + printable(line) if line else "#"
