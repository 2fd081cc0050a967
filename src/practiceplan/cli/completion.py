"""Static shell-completion scripts generated from a Typer command tree.

`generate(app, shell, prog_name)` walks the (Typer/Click) command tree once and
renders a self-contained bash, zsh or fish script: commands, options and fixed
choices complete without starting Python.  Values only the program knows (plan
titles and ids, session ids, template ids, time zones) are asked of
`prog __complete SHELL KIND PREFIX`, which cli/entry.py answers without Typer
(under 100 ms).  Output is deterministic (declaration order, no timestamps), which
lets a test compare the committed scripts under ``completions/`` byte for byte.

Pure: no I/O; imports only typer and the standard library.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

import typer
import typer.main

SHELLS = ("bash", "zsh", "fish")


@dataclass(frozen=True)
class _Option:
    names: tuple[str, ...]  # e.g. ("--flex", "-f", "--no-flex")
    help: str
    takes_value: bool
    choices: tuple[str, ...]
    is_path: bool
    dynamic: str | None = None  # a kind of value `prog __complete SHELL KIND PREFIX` lists (plan ids, zones...)


@dataclass
class _Node:
    path: tuple[str, ...]  # () for the root, ("plan", "add") for `prog plan add`
    subcommands: list[tuple[str, str]] = field(default_factory=list)  # (name, help)
    options: list[_Option] = field(default_factory=list)
    arg_choices: list[str] = field(default_factory=list)  # values for positional args
    arg_files: bool = False  # a positional argument is a path
    arg_dynamic: str | None = None  # positional values come from `prog __complete SHELL KIND PREFIX`

    @property
    def key(self) -> str:
        return " ".join(self.path)

    def value_options(self) -> list[str]:
        return [n for o in self.options if o.takes_value for n in o.names]


def _summary(text: str | None) -> str:
    """First paragraph of a help text on one line ('\\f' ends the help, as in Click)."""
    text = (text or "").split("\f")[0].strip()
    return " ".join(re.split(r"\n\s*\n", text)[0].replace("\b", "").split())


def _choices(param_type: object) -> tuple[str, ...]:
    values = getattr(param_type, "choices", None) or ()
    return tuple(str(v.value if isinstance(v, enum.Enum) else v) for v in values)


def _is_path(param_type: object) -> bool:
    return any("Path" in c.__name__ or "File" in c.__name__ for c in type(param_type).__mro__)


def value_kind(path: tuple[str, ...], param) -> str | None:
    """What practiceplan can list for a parameter on Tab (see services/completion.py), from its name and metavar:
    plan ids and titles, sessions, templates, time zones."""
    metavar = (param.metavar or "").strip("[]")
    names = set(getattr(param, "opts", ()))
    if "--tz" in names or metavar == "ZONE":
        return "zone"
    if "--plan" in names or metavar == "PLAN":
        return "plan"
    if metavar == "OCC":
        return "occurrence"
    if metavar == "ID" and param.param_type_name == "argument" and path[:1] in (("plan",), ("template",)):
        if path == ("plan", "restore"):
            return "deleted-plan"
        return "plan" if path[0] == "plan" else "template"
    return None


def walk_commands(cmd, name: str, path: tuple[str, ...] = (), parent=None, **settings):
    """Yield ``(path, command, context)`` for ``cmd`` and each visible subcommand below it, in declaration order
    (``settings`` go into every context, e.g. ``terminal_width`` for help text of a fixed width)."""
    ctx = cmd.context_class(cmd, parent=parent, info_name=name, **{**cmd.context_settings, **settings})
    yield path, cmd, ctx
    if getattr(cmd, "commands", None) is None:
        return
    for sub_name in cmd.list_commands(ctx):
        sub = cmd.get_command(ctx, sub_name)
        if sub is not None and not getattr(sub, "hidden", False):
            yield from walk_commands(sub, sub_name, (*path, sub_name), ctx, **settings)


def _walk(cmd, prog_name: str, kind_of=None) -> list[_Node]:
    out = []
    for path, command, ctx in walk_commands(cmd, prog_name):
        node = _Node(path)
        out.append(node)
        _add_params(node, command, ctx, kind_of)
        for sub_name in command.list_commands(ctx) if getattr(command, "commands", None) is not None else ():
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not getattr(sub, "hidden", False):
                node.subcommands.append((sub_name, _summary(sub.short_help or sub.help)))
    return out


def _add_params(node: _Node, cmd, ctx, kind_of) -> None:
    path = node.path
    for param in cmd.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        choices, is_path = _choices(param.type), _is_path(param.type)
        if param.param_type_name == "option":
            takes_value = not (param.is_flag or getattr(param, "count", False))
            names = (*param.opts, *param.secondary_opts)
            if param.name == "help":  # Click builds the help option's names from a set: fix their order
                names = tuple(sorted(names, key=lambda n: (n.startswith("--"), n)))
            dynamic = kind_of(path, param) if kind_of and takes_value and not choices else None
            node.options.append(_Option(names, _summary(param.help), takes_value, choices if takes_value else (),
                                        is_path and takes_value and not choices, dynamic))
        elif param.param_type_name == "argument":
            node.arg_choices.extend(c for c in choices if c not in node.arg_choices)
            node.arg_files = node.arg_files or (is_path and not choices)
            node.arg_dynamic = node.arg_dynamic or (kind_of(path, param) if kind_of else None)


def _sq(text: str) -> str:
    """POSIX/zsh single-quoted literal."""
    return "'" + text.replace("'", "'\\''") + "'"


def _fq(text: str) -> str:
    """fish single-quoted literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fword(text: str) -> str:
    """A fish word, quoted only when needed (for nesting inside -n/-a strings)."""
    return text if re.fullmatch(r"[\w.,+@/:=-]+", text) else _fq(text)


def _ident(prog_name: str) -> str:
    return re.sub(r"\W", "_", prog_name)


def _header(prog_name: str, shell: str) -> str:
    return (f"# Generated by `{prog_name} completion {shell}` from the command tree.\n"
            "# DO NOT EDIT BY HAND: regenerate it instead.\n")


def _bash(nodes: list[_Node], prog: str) -> str:
    fn = _ident(prog)
    out = [_header(prog, "bash"), f"__{fn}_node() {{", '    case "$1" in']
    for n in nodes:
        subs = " ".join(s for s, _ in n.subcommands)
        opts = " ".join(name for o in n.options for name in o.names)
        out.append(f"        {_sq(n.key)}) _subs={_sq(subs)} _opts={_sq(opts)} "
                   f"_vopts={_sq(' '.join(n.value_options()))} _args={_sq(' '.join(n.arg_choices))} "
                   f"_fileargs={int(n.arg_files)} _dyn={_sq(n.arg_dynamic or '')} ;;")
    out += ["        *) _subs='' _opts='' _vopts='' _args='' _fileargs=0 _dyn='' ;;", "    esac", "}", "",
            f"__{fn}_dynamic() {{", "    local IFS=$'\\n' v", "    COMPREPLY=()",
            f'    for v in $(command {_sq(prog)} __complete bash "$1" "$2" 2>/dev/null); do',
            """        COMPREPLY+=("$(printf '%q' "$v")")""", "    done", "}", "",
            f"__{fn}_values() {{", '    case "$1|$2" in']
    for n in nodes:
        for o in n.options:
            if not (o.choices or o.is_path or o.dynamic):
                continue
            pattern = "|".join(_sq(f"{n.key}|{name}") for name in o.names)
            if o.dynamic:
                out.append(f'        {pattern}) __{fn}_dynamic {o.dynamic} "$3" ;;')
            elif o.choices:
                out.append(f'        {pattern}) COMPREPLY=($(compgen -W {_sq(" ".join(o.choices))} -- "$3")) ;;')
            else:
                out.append(f'        {pattern}) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$3")) ;;')
    out += ["        *) COMPREPLY=() ;;", "    esac", "}", "", f"""\
_{fn}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmdpath="" opt="" skip=0 i w
    local _subs _opts _vopts _args _fileargs _dyn
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        if ((skip)); then
            [[ $w == "=" ]] || skip=0  # `--opt=value` is split into `--opt` `=` `value`
            continue
        fi
        __{fn}_node "$cmdpath"
        if [[ $w == -* ]]; then
            [[ " $_vopts " == *" $w "* ]] && opt="$w" skip=1
        elif [[ " $_subs " == *" $w "* ]]; then
            cmdpath="${{cmdpath:+$cmdpath }}$w"
        fi
    done
    if ((skip)); then
        [[ $cur == "=" ]] && cur=""
        __{fn}_values "$cmdpath" "$opt" "$cur"
        return 0
    fi
    __{fn}_node "$cmdpath"
    if [[ $cur == -* || -z "$_subs$_args$_dyn" && $_fileargs == 0 ]]; then
        COMPREPLY=($(compgen -W "$_opts" -- "$cur"))
        return 0
    fi
    if [[ -n $_dyn ]]; then
        __{fn}_dynamic "$_dyn" "$cur"
        return 0
    fi
    COMPREPLY=($(compgen -W "$_subs $_args" -- "$cur"))
    if ((_fileargs)); then
        compopt -o filenames 2>/dev/null
        COMPREPLY+=($(compgen -f -- "$cur"))
    fi
    return 0
}}

complete -F _{fn} {_sq(prog)}
"""]
    return "\n".join(out)


def _zsh_arr(items) -> str:
    return "(" + " ".join(_sq(i) for i in items) + ")"


def _zsh_described(pairs) -> str:
    return _zsh_arr(f"{name.replace(':', chr(92) + ':')}:{desc}" if desc else name.replace(":", "\\:")
                    for name, desc in pairs)


def _zsh(nodes: list[_Node], prog: str) -> str:
    fn = _ident(prog)
    out = [f"#compdef {prog}", _header(prog, "zsh"), f"__{fn}_node() {{", '    case "$1" in']
    for n in nodes:
        opts = [(name, o.help) for o in n.options for name in o.names]
        out.append(f"        {_sq(n.key)})\n"
                   f"            _names={_zsh_arr(s for s, _ in n.subcommands)}\n"
                   f"            _subs={_zsh_described(n.subcommands)}\n"
                   f"            _opts={_zsh_described(opts)}\n"
                   f"            _vopts={_zsh_arr(n.value_options())}\n"
                   f"            _args={_zsh_arr(n.arg_choices)} _fileargs={int(n.arg_files)} "
                   f"_dyn={_sq(n.arg_dynamic or '')} ;;")
    out += ["        *) _names=() _subs=() _opts=() _vopts=() _args=() _fileargs=0 _dyn='' ;;", "    esac", "}", "",
            f"__{fn}_dynamic() {{", "    local -a _vals",
            f'    _vals=(${{(f)"$(command {_sq(prog)} __complete zsh "$1" "$PREFIX" 2>/dev/null)"}})',
            "    (( ${#_vals} )) && _describe -t values 'value' _vals", "}", "",
            f"__{fn}_values() {{", '    case "$1|$2" in']
    for n in nodes:
        for o in n.options:
            if o.takes_value:
                pattern = "|".join(_sq(f"{n.key}|{name}") for name in o.names)
                action = (f"__{fn}_dynamic {o.dynamic}" if o.dynamic
                          else "compadd -- " + " ".join(_sq(c) for c in o.choices) if o.choices
                          else "_files" if o.is_path else f"_message {_sq(o.help or 'value')}")
                out.append(f"        {pattern}) {action} ;;")
    out += ["        *) _message 'value' ;;", "    esac", "}", "", f"""\
_{fn}() {{
    local -a _names _subs _opts _vopts _args
    local _fileargs=0 _dyn='' cmdpath='' opt='' skip=0 i w cur="${{words[CURRENT]}}" ret=1
    for ((i = 2; i < CURRENT; i++)); do
        w="${{words[i]}}"
        if ((skip)); then skip=0; continue; fi
        __{fn}_node "$cmdpath"
        if [[ $w == -* ]]; then
            (( ${{_vopts[(Ie)$w]}} )) && opt="$w" && skip=1
        elif (( ${{_names[(Ie)$w]}} )); then
            cmdpath="${{cmdpath:+$cmdpath }}$w"
        fi
    done
    if ((skip)); then __{fn}_values "$cmdpath" "$opt"; return; fi
    __{fn}_node "$cmdpath"
    if [[ $cur == -*=* ]] && (( ${{_vopts[(Ie)${{cur%%=*}}]}} )); then
        opt="${{cur%%=*}}"; compset -P '*='; __{fn}_values "$cmdpath" "$opt"; return
    fi
    if [[ $cur == -* ]] || (( ${{#_subs}} + ${{#_args}} + ${{#_dyn}} + _fileargs == 0 )); then
        _describe -t options 'option' _opts && ret=0
        return $ret
    fi
    (( ${{#_subs}} )) && _describe -t commands 'command' _subs && ret=0
    (( ${{#_args}} )) && compadd -a _args && ret=0
    [[ -n $_dyn ]] && __{fn}_dynamic "$_dyn" && ret=0
    (( _fileargs )) && _files && ret=0
    return $ret
}}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _{fn} "$@"
else
    compdef _{fn} {_sq(prog)}
fi
"""]
    return "\n".join(out)


def _fish_option_flags(name: str) -> str:
    if name.startswith("--"):
        return f"-l {_fword(name[2:])}"
    if name.startswith("-") and len(name) == 2:
        return f"-s {_fword(name[1:])}"
    return f"-o {_fword(name.lstrip('-'))}"


def _fish_dynamic(prog: str, kind: str) -> str:
    return f"({_fword(prog)} __complete fish {kind} (commandline -ct))"


def _fish(nodes: list[_Node], prog: str) -> str:
    fn, c = _ident(prog), f"complete -c {_fword(prog)}"
    out = [_header(prog, "fish"), f"function __{fn}_cmdpath",
           "    set -l words (commandline -opc)", "    set -e words[1]",
           "    set -l cmdpath", "    set -l skip 0", "    for w in $words",
           "        if test $skip = 1", "            set skip 0", "            continue", "        end",
           "        set -l subs", "        set -l vopts", '        switch "$cmdpath"']
    for n in nodes:
        out.append(f"            case {_fq(n.key)}")
        if n.subcommands:
            out.append("                set subs " + " ".join(_fword(s) for s, _ in n.subcommands))
        if n.value_options():
            out.append("                set vopts " + " ".join(_fword(v) for v in n.value_options()))
    out += ["        end", "        if string match -q -- '-*' $w",
            "            contains -- $w $vopts; and set skip 1",
            "        else if contains -- $w $subs", "            set -a cmdpath $w", "        end",
            "    end", '    echo "$cmdpath"', "end", "",
            f"function __{fn}_at", f"    set -l p (__{fn}_cmdpath)", '    test "$p" = "$argv"', "end", "",
            f"{c} -f"]
    for n in nodes:
        cond = "-n " + _fq(" ".join([f"__{fn}_at", *(_fword(p) for p in n.path)]))
        for name, desc in n.subcommands:
            out.append(f"{c} {cond} -a {_fq(_fword(name))}" + (f" -d {_fq(desc)}" if desc else ""))
        if n.arg_choices:
            out.append(f"{c} {cond} -a {_fq(' '.join(_fword(a) for a in n.arg_choices))}")
        if n.arg_files:
            out.append(f"{c} {cond} -F")
        if n.arg_dynamic:
            out.append(f"{c} {cond} -k -a {_fq(_fish_dynamic(prog, n.arg_dynamic))}")
        for o in n.options:
            line = f"{c} {cond} " + " ".join(_fish_option_flags(name) for name in o.names)
            if o.dynamic:
                line += f" -x -k -a {_fq(_fish_dynamic(prog, o.dynamic))}"
            elif o.choices:
                line += f" -x -a {_fq(' '.join(_fword(ch) for ch in o.choices))}"
            elif o.is_path:
                line += " -r -F"
            elif o.takes_value:
                line += " -x"
            out.append(line + (f" -d {_fq(o.help)}" if o.help else ""))
    return "\n".join(out) + "\n"


_RENDERERS = {"bash": _bash, "zsh": _zsh, "fish": _fish}


def generate(app_or_command, shell: str, prog_name: str, kind_of=value_kind) -> str:
    """Return a static completion script for `shell` ("bash", "zsh" or "fish").

    `app_or_command` is a `typer.Typer` or an already-built (Typer/Click) command.
    Hidden commands and options are left out.  Raises ValueError for other shells.
    `kind_of(path, param)` names the values a parameter takes that only the program knows (plan ids, sessions,
    zones); the script asks `prog __complete SHELL KIND PREFIX` for them on Tab (None: no such values).
    """
    if shell not in _RENDERERS:
        raise ValueError(f"unsupported shell {shell!r}; expected one of {', '.join(SHELLS)}")
    cmd = app_or_command
    if isinstance(cmd, typer.Typer):
        cmd = typer.main.get_command(cmd)
    return _RENDERERS[shell](_walk(cmd, prog_name, kind_of), prog_name)
