"""Compose's ``${VAR}`` interpolation, turned into deployer's template variables.

Compose fills ``$VAR``, ``${VAR}`` and their ``:-`` ``-`` ``:?`` ``?`` ``:+`` ``+`` forms
from the shell and the project's ``.env`` when it runs; ``$$`` is a literal ``$``. A
template is deployed later, elsewhere, per instance, so an import must not bake in the
importing shell's values. What each form becomes:

- ``${VAR}``, ``$VAR``, ``${VAR:?err}``, ``${VAR?err}``: the template variable ``{VAR}``,
  given at deploy time with ``--var VAR=...`` (or ``--vars FILE``).
- ``${VAR:-default}``, ``${VAR-default}``: the default, written into the template (so
  the output validates and deploys as compose would run with nothing set), with a note;
  but when the project's ``.env`` sets VAR, ``{VAR}``: the user chose to configure it.
- ``${VAR:+alt}``, ``${VAR+alt}``: ``alt`` if the ``.env`` sets VAR, else empty (a note).

Defaults and alternatives are interpolated themselves (``${A:-${B}}``). A variable
named ``instance`` or ``host`` (deployer's built-ins) is renamed ``compose_<name>``.

While the converter works, a variable in a string is held as ``\\0NAME\\0`` (NUL can
be in no template value, so it cannot clash with text); ``template_text`` writes the
final ``{NAME}`` and doubles the braces of literal text that deployer would otherwise
read as a placeholder.
"""

import re

from ..errors import TemplateError
from ..model.variables import substitute

MARK = "\0"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BUILT_IN = {"instance", "host"}  # deployer fills these itself
_LITERAL_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][\w.-]*)\}")


class Interpolation:
    """Interpolates the strings of one compose file, knowing its ``.env`` (``dotenv``);
    remembers which variables the template needs and what it noted."""

    def __init__(self, dotenv, file):
        self.dotenv = dotenv
        self.file = file
        self.needed = {}  # variable -> the first key path using it
        self.notes = []  # (key path, text)

    def value(self, data, where=""):
        """Every string in ``data`` (YAML values, not keys) interpolated."""
        if isinstance(data, str):
            return self.text(data, where)
        if isinstance(data, dict):
            return {k: self.value(v, f"{where}.{k}" if where else str(k)) for k, v in data.items()}
        if isinstance(data, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(data)]
        return data

    def text(self, text, where):
        if MARK in text:
            raise TemplateError("contains a NUL byte, which no container can be given", file=self.file, key=where)
        out, _ = self._scan(text, 0, where, stop=None)
        return out

    def _scan(self, text, at, where, stop):
        """``text`` from ``at`` up to the ``}`` closing a default (``stop``), interpolated:
        (result, index after it)."""
        out = []
        while at < len(text):
            ch = text[at]
            if stop and ch == "}":
                return "".join(out), at + 1
            if ch != "$":
                out.append(ch)
                at += 1
            elif text.startswith("$$", at):
                out.append("$")
                at += 2
            elif text.startswith("${", at):
                value, at = self._braced(text, at + 2, where)
                out.append(value)
            elif NAME.match(text, at + 1):
                name = NAME.match(text, at + 1).group(0)
                out.append(self.variable(name, where))
                at += 1 + len(name)
            else:
                out.append("$")
                at += 1
        if stop:
            raise TemplateError(f"unclosed '${{' in {text!r}", file=self.file, key=where)
        return "".join(out), at

    def _braced(self, text, at, where):
        """``${NAME[op word]}`` from just after ``${``: (its value, index after the ``}``)."""
        match = NAME.match(text, at)
        if not match:
            raise TemplateError(f"invalid interpolation in {text!r}: expected a name after '${{'",
                                file=self.file, key=where)
        name, at = match.group(0), match.end()
        op = next((op for op in (":-", ":?", ":+", "-", "?", "+") if text.startswith(op, at)), "")
        if not op:
            if not text.startswith("}", at):
                raise TemplateError(f"invalid interpolation in {text!r}: unexpected {text[at:at + 1]!r} "
                                    f"after ${{{name}", file=self.file, key=where)
            return self.variable(name, where), at + 1
        set_in_dotenv = name in self.dotenv and (self.dotenv[name] != "" or ":" not in op)
        taken = (op in (":-", "-") and not set_in_dotenv) or (op in (":+", "+") and set_in_dotenv)
        word, at = self._word(text, at + len(op), where, taken)
        if op in (":?", "?") or (op in (":-", "-") and set_in_dotenv):
            return self.variable(name, where), at
        if op in (":-", "-"):
            self.notes.append((where, f"${{{name}{op}...}}: its default {shown(word)} is written in; "
                                      f"write {{{name}}} there to set it per instance"))
        else:
            self.notes.append((where, f"${{{name}{op}...}}: {'.env sets' if set_in_dotenv else 'nothing sets'} "
                                      f"{name}, so it is {shown(word if taken else '')} here"))
        return (word if taken else ""), at

    def _word(self, text, at, where, taken):
        """A default or alternative up to its ``}``; one not taken asks for no variable."""
        if taken:
            return self._scan(text, at, where, stop="}")
        saved = self.needed, self.notes
        self.needed, self.notes = {}, []
        try:
            return self._scan(text, at, where, stop="}")
        finally:
            self.needed, self.notes = saved

    def variable(self, name, where):
        """``{name}`` in the template: a variable given at deploy time (compose's own
        COMPOSE_PROJECT_NAME is deployer's ``{instance}``)."""
        if name == "COMPOSE_PROJECT_NAME":
            self.notes.append((where, "${COMPOSE_PROJECT_NAME} is {instance}: the instance plays the project's part"))
            return f"{MARK}instance{MARK}"
        if name in BUILT_IN:
            renamed = f"compose_{name}"
            self.notes.append((where, f"${{{name}}} is the template variable {{{renamed}}}: "
                                      f"{{{name}}} is deployer's own"))
            name = renamed
        self.needed.setdefault(name, where)
        return f"{MARK}{name}{MARK}"


def shown(value):
    """A value as a note shows it: quoted, variables as ``{NAME}``."""
    return repr(template_text(value))


def has_variables(value):
    return isinstance(value, str) and MARK in value


def variables_in(value):
    return value.split(MARK)[1::2] if isinstance(value, str) else []


def template_text(value):
    """A converted string as the template holds it: ``{NAME}`` for variables, and literal
    text that deployer would read as a placeholder escaped (``{x}`` -> ``{{x}}``)."""
    parts = value.split(MARK)
    return "".join(f"{{{part}}}" if odd else escape(part) for odd, part in _alternating(parts))


def _alternating(parts):
    return ((i % 2 == 1, part) for i, part in enumerate(parts))


def escape(literal):
    """Literal text that comes back unchanged from deployer's variable substitution.

    Doubling the braces of every ``{name}`` not preceded by ``$`` is enough: substitution
    turns each ``{{name}}`` back into ``{name}``, wherever it stands (the unit tests
    check this over arbitrary text)."""
    return _LITERAL_PLACEHOLDER.sub(lambda m: "{{" + m.group(1) + "}}", literal)


def representable(value):
    """Whether deployer's substitution gives ``value`` back from its template text. Not
    so for a variable right after a literal ``$`` (``$${X}``: deployer never fills
    ``${X}``) or inside literal braces (``{${X}}`` would be written ``{{X}}``, a literal)."""
    names = {name: f"{MARK}{name}{MARK}" for name in variables_in(value)}
    try:
        return substitute(template_text(value), names, "<import>") == value
    except TemplateError:
        return False
