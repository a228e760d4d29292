"""Evaluates a Terraform configuration the way `terraform plan` would, without Terraform or its
providers, so that a test can read what the configuration really sets: a task definition's
environment, secrets and command as the production root gives them.

Parsing is python-hcl2's grammar (checkov's fork, the one scripts/check-terraform installs),
driven without its dict transformer so that expressions stay trees. Evaluation is lazy: a value
is computed only when something asks for it, so only the part of the stack a test reads has to
be understood.

What plan would only know after apply (a queue's URL, a database's address) comes from a table
of stand-ins the caller passes, keyed by `<module path>.<type>.<name>.<attribute>`, for example
`module.stack.module.data.aws_db_instance.this.address`, or `data.<type>.<name>.<attribute>`
for data sources. Anything without a stand-in stays Unknown, as plan prints "(known after
apply)"; a caller that needs a concrete value calls `known()` and gets a clear error naming the
missing stand-in. Unsupported syntax or functions raise instead of guessing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hcl2.parser import LARK_GRAMMAR
from lark import Lark, Token, Tree

_PARSER = Lark(LARK_GRAMMAR, parser="lalr", propagate_positions=True)


class EvalError(Exception):
    """The configuration uses something this evaluator does not support, or is wrong."""


@dataclass(frozen=True)
class Unknown:
    """A value plan would only learn after apply; `ref` names where it comes from. Reading an
    attribute or an index of it gives the stand-in for the longer path, if there is one."""

    ref: str
    stand_ins: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def step(self, suffix: str) -> Any:
        ref = self.ref + suffix
        return self.stand_ins[ref] if ref in self.stand_ins else Unknown(ref, self.stand_ins)

    def __str__(self) -> str:
        return f"(known after apply: {self.ref})"


def known(value: Any, where: str = "") -> Any:
    """The value with every Unknown inside it refused."""
    unknown = _first_unknown(value)
    if unknown is not None:
        raise EvalError(f"{where or 'value'} is {unknown}; give the evaluator a stand-in for {unknown.ref}")
    return value


def _first_unknown(value: Any) -> Unknown | None:
    if isinstance(value, Unknown):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_unknown(item)
            if found is not None:
                return found
    return None


# --- parsing ----------------------------------------------------------------------------------


@dataclass
class Block:
    kind: str
    labels: list[str]
    attributes: dict[str, Tree]
    blocks: list["Block"]


def _parse_body(body: Tree) -> tuple[dict[str, Tree], list[Block]]:
    attributes: dict[str, Tree] = {}
    blocks: list[Block] = []
    for child in body.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "attribute":
            attributes[str(child.children[0].children[0])] = child.children[1]
        elif child.data == "block":
            head = [c for c in child.children if not (isinstance(c, Tree) and c.data == "body")]
            inner = next(c for c in child.children if isinstance(c, Tree) and c.data == "body")
            labels = [str(c.children[0]) if isinstance(c, Tree) else _unquote(str(c)) for c in head]
            attrs, nested = _parse_body(inner)
            blocks.append(Block(labels[0], labels[1:], attrs, nested))
    return attributes, blocks


def _parse_expression(text: str) -> Tree:
    body = _PARSER.parse(f"x = {text}\n").children[0]
    return body.children[0].children[1]


def _unquote(literal: str) -> str:
    return literal[1:-1] if literal.startswith('"') else literal


# --- functions ----------------------------------------------------------------------------------


def _tostring(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if v is None or isinstance(v, (str, int, float)):
        return v if v is None or isinstance(v, str) else str(v)
    raise EvalError(f"tostring of {type(v).__name__}")


def _jsonencode(v):
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def _merge(*maps):
    out: dict = {}
    for m in maps:
        if m is None:
            continue
        out.update(m)
    return out


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "merge": _merge,
    "tostring": _tostring,
    "tonumber": lambda v: float(v) if "." in str(v) else int(v),
    "tolist": list,
    "toset": lambda v: sorted(set(v), key=str),
    "tomap": dict,
    "join": lambda sep, items: sep.join(_tostring(i) for i in items),
    "concat": lambda *lists: [i for lst in lists for i in lst],
    "sort": lambda items: sorted(items),
    "keys": lambda m: sorted(m.keys()),
    "values": lambda m: [m[k] for k in sorted(m.keys())],
    "length": len,
    "contains": lambda coll, v: v in coll,
    "distinct": lambda items: list(dict.fromkeys(items)),
    "trimprefix": lambda s, prefix: s[len(prefix) :] if prefix and s.startswith(prefix) else s,
    "trimsuffix": lambda s, suffix: s[: -len(suffix)] if suffix and s.endswith(suffix) else s,
    "trimspace": str.strip,
    "lower": str.lower,
    "upper": str.upper,
    "replace": lambda s, old, new: s.replace(old, new),
    "jsonencode": _jsonencode,
    # JSON is YAML: the evaluator renders what Terraform would, in another YAML spelling.
    "yamlencode": lambda value: json.dumps(value),
    "jsondecode": json.loads,
    "floor": lambda v: math.floor(v),
    "ceil": lambda v: math.ceil(v),
    "min": min,
    "max": max,
    "alltrue": lambda items: all(items),
    "anytrue": lambda items: any(items),
    "range": lambda *a: list(range(*a)),
    "format": lambda fmt, *a: re.sub(r"%[sdv]", "{}", fmt).format(*a),
    "lookup": lambda m, k, default=None: m.get(k, default),
    "coalesce": lambda *a: next((v for v in a if v not in (None, "")), None),
    "startswith": lambda s, p: s.startswith(p),
    "endswith": lambda s, p: s.endswith(p),
    "flatten": lambda items: [i for sub in items for i in (sub if isinstance(sub, list) else [sub])],
    "compact": lambda items: [i for i in items if i not in (None, "")],
}

# Type constructors, evaluated in variable `type` arguments only.
_TYPE_WORDS = {"string", "number", "bool", "any"}

_PRECEDENCE = [{"||"}, {"&&"}, {"==", "!="}, {"<", ">", "<=", ">="}, {"+", "-"}, {"*", "/", "%"}]


# --- modules ----------------------------------------------------------------------------------


class Module:
    """One module instance: its directory, the variables its caller gave it, its address."""

    def __init__(self, directory: Path, variables: dict[str, Any], address: str, stand_ins: dict[str, Any]):
        self.directory = directory
        self.address = address
        self.stand_ins = stand_ins
        self.variable_blocks: dict[str, Block] = {}
        self.local_exprs: dict[str, Tree] = {}
        self.module_blocks: dict[str, Block] = {}
        self.outputs: dict[str, Block] = {}
        self.resources: dict[tuple[str, str], Block] = {}
        self.data_sources: dict[tuple[str, str], Block] = {}
        for path in sorted(directory.glob("*.tf")):
            attributes, blocks = _parse_body(_PARSER.parse(path.read_text(encoding="utf-8") + "\n").children[0])
            for block in blocks:
                if block.kind == "variable":
                    self.variable_blocks[block.labels[0]] = block
                elif block.kind == "locals":
                    self.local_exprs.update(block.attributes)
                elif block.kind == "module":
                    self.module_blocks[block.labels[0]] = block
                elif block.kind == "output":
                    self.outputs[block.labels[0]] = block
                elif block.kind == "resource":
                    self.resources[(block.labels[0], block.labels[1])] = block
                elif block.kind == "data":
                    self.data_sources[(block.labels[0], block.labels[1])] = block
        self._locals: dict[str, Any] = {}
        self._modules: dict[str, Module] = {}
        self._given = variables
        unknown = set(variables) - set(self.variable_blocks)
        if unknown:
            raise EvalError(f"{self.address or 'root'}: no variable {sorted(unknown)}")
        self._vars: dict[str, Any] = {}

    def var(self, name: str) -> Any:
        if name not in self.variable_blocks:
            raise EvalError(f"{self.address or 'root'}: no variable {name}")
        if name not in self._vars:
            self._vars[name] = self._variable(name)
        return self._vars[name]

    # Variables, with their defaults and their object types' optional() defaults.
    def _variable(self, name: str) -> Any:
        block = self.variable_blocks[name]
        if name in self._given:
            value = self._given[name]
            if isinstance(value, _Lazy):
                value = value.scope.eval(value.expr)
        elif "default" in block.attributes:
            value = Scope(self, {}).eval(block.attributes["default"])
        else:
            raise EvalError(f"{self.address or 'root'}: variable {name} is required and not set")
        if "type" in block.attributes and value is not None:
            value = self._convert(block.attributes["type"], value)
        return value

    def _convert(self, type_expr: Tree, value: Any) -> Any:
        """Fills the defaults of optional() object attributes, as Terraform's type conversion."""
        kind, args = _type_call(type_expr)
        if kind == "object" and isinstance(value, dict):
            out = dict(value)
            for elem in _strip(args[0]).children if args else []:
                key = _object_key(elem.children[0])
                attr_type = elem.children[1]
                attr_kind, attr_args = _type_call(attr_type)
                if key not in out or out[key] is None:
                    if attr_kind == "optional":
                        out[key] = Scope(self, {}).eval(attr_args[1]) if len(attr_args) > 1 else None
                    else:
                        out[key] = None
                if attr_kind == "optional":
                    attr_type = attr_args[0]
                if out[key] is not None:
                    out[key] = self._convert(attr_type, out[key])
            return out
        if kind in ("map",) and isinstance(value, dict) and args:
            return {k: self._convert(args[0], v) for k, v in value.items()}
        if kind in ("list", "set") and isinstance(value, list) and args:
            return [self._convert(args[0], v) for v in value]
        return value

    def local(self, name: str) -> Any:
        if name not in self._locals:
            if name not in self.local_exprs:
                raise EvalError(f"{self.address or 'root'}: no local {name}")
            self._locals[name] = Scope(self, {}).eval(self.local_exprs[name])
        return self._locals[name]

    def module(self, name: str) -> Module:
        if name not in self._modules:
            block = self.module_blocks.get(name)
            if block is None:
                raise EvalError(f"{self.address or 'root'}: no module {name}")
            scope = Scope(self, {})
            source = scope.eval(block.attributes["source"])
            arguments = {
                k: _Lazy(scope, v)
                for k, v in block.attributes.items()
                if k not in ("source", "version", "providers", "depends_on", "count", "for_each")
            }
            address = f"{self.address}.module.{name}" if self.address else f"module.{name}"
            self._modules[name] = Module((self.directory / source).resolve(), arguments, address, self.stand_ins)
        return self._modules[name]

    def output(self, name: str) -> Any:
        if name not in self.outputs:
            raise EvalError(f"{self.address or 'root'}: no output {name}")
        return Scope(self, {}).eval(self.outputs[name].attributes["value"])

    def resource(self, kind: str, name: str, data: bool = False) -> Any:
        """A resource (or data source) as references see it: one instance, a list for count, a
        map for for_each."""
        table = self.data_sources if data else self.resources
        block = table.get((kind, name))
        if block is None:
            raise EvalError(f"{self.address or 'root'}: no {'data ' if data else ''}{kind}.{name}")
        prefix = f"{self.address}." if self.address else ""
        ref = f"{prefix}{'data.' if data else ''}{kind}.{name}"
        scope = Scope(self, {})
        if "for_each" in block.attributes:
            collection = scope.eval(block.attributes["for_each"])
            if isinstance(collection, list):
                collection = {v: v for v in collection}
            return {k: Instance(self, block, f'{ref}["{k}"]', {"each": {"key": k, "value": v}}) for k, v in collection.items()}
        if "count" in block.attributes:
            count = scope.eval(block.attributes["count"])
            return [Instance(self, block, f"{ref}[{i}]", {"count": {"index": i}}) for i in range(count)]
        return Instance(self, block, ref, {})


@dataclass
class _Lazy:
    """A module argument, evaluated in its caller's scope when the module first reads it."""

    scope: "Scope"
    expr: Tree


def _type_call(expr: Tree) -> tuple[str, list[Tree]]:
    node = _strip(expr)
    if node.data == "identifier":
        return str(node.children[0]), []
    if node.data == "function_call":
        name = str(node.children[0].children[0])
        args = node.children[1].children if len(node.children) > 1 else []
        return name, [a for a in args if isinstance(a, Tree)]
    return "any", []


def _strip(expr: Tree) -> Tree:
    while isinstance(expr, Tree) and expr.data == "expr_term" and len(expr.children) == 1 and isinstance(expr.children[0], Tree):
        expr = expr.children[0]
    return expr


def _object_key(node: Tree) -> str:
    node = _strip(node)
    if node.data == "identifier":
        return str(node.children[0])
    if node.data == "expr_term" and isinstance(node.children[0], Token):
        return _unquote(str(node.children[0]))
    raise EvalError(f"unsupported object key {node}")


class Instance:
    """One resource instance: its arguments evaluate from the block; anything else (computed
    attributes) is a stand-in or Unknown."""

    def __init__(self, module: Module, block: Block, ref: str, bindings: dict[str, Any]):
        self.module, self.block, self.ref, self.bindings = module, block, ref, bindings

    def attr(self, name: str) -> Any:
        if name in self.block.attributes:
            return Scope(self.module, self.bindings).eval(self.block.attributes[name])
        nested = [b for b in self.block.blocks if b.kind == name]
        if nested:
            return [Instance(self.module, b, f"{self.ref}.{name}", self.bindings) for b in nested]
        return Unknown(self.ref, self.module.stand_ins).step(f".{name}")


# --- expressions --------------------------------------------------------------------------------


class Scope:
    def __init__(self, module: Module, bindings: dict[str, Any]):
        self.module, self.bindings = module, bindings

    def eval(self, node: Any) -> Any:
        if isinstance(node, Token):
            return self._token(node)
        kind = node.data
        children = [c for c in node.children]
        if kind == "expr_term":
            if len(children) == 1:
                return self.eval(children[0])
            raise EvalError(f"unsupported term {node}")
        if kind == "int_lit":
            return int("".join(str(c) for c in children))
        if kind == "float_lit":
            return float("".join(str(c) for c in children))
        if kind == "identifier":
            return self._name(str(children[0]))
        if kind == "tuple":
            return [self.eval(c) for c in children if isinstance(c, Tree)]
        if kind == "object":
            return {self._key(e.children[0]): self.eval(e.children[1]) for e in children if isinstance(e, Tree)}
        if kind == "function_call":
            return self._call(node)
        if kind in ("get_attr_expr_term", "index_expr_term"):
            return self._traverse(node)
        if kind == "conditional":
            cond, yes, no = children
            test = self.eval(cond)
            if isinstance(test, Unknown):
                return test
            return self.eval(yes) if test else self.eval(no)
        if kind == "binary_op":
            return self._binary(node)
        if kind == "unary_op":
            op, operand = str(children[0]), self.eval(children[1])
            if isinstance(operand, Unknown):
                return operand
            return -operand if op == "-" else not operand
        if kind == "for_tuple_expr":
            return self._for(node, tuple_=True)
        if kind == "for_object_expr":
            return self._for(node, tuple_=False)
        if kind in ("heredoc_template", "heredoc_template_trim"):
            return self._heredoc(str(children[0]), trim=kind.endswith("trim"))
        raise EvalError(f"unsupported expression {kind}")

    def _token(self, token: Token) -> Any:
        if token.type == "STRING_LIT":
            return self._template(str(token)[1:-1])
        raise EvalError(f"unsupported token {token.type}")

    def _template(self, text: str) -> Any:
        parts = _split_template(text)
        if len(parts) == 1 and isinstance(parts[0], Tree):
            return self.eval(parts[0])
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = self.eval(part)
            if isinstance(value, Unknown):
                return value
            out.append(_tostring(value))
        return "".join(out)

    def _heredoc(self, raw: str, trim: bool) -> str:
        lines = raw.split("\n")[1:-1]
        if trim:
            indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
            lines = [l[indent:] for l in lines]
        return self._template("\n".join(lines) + "\n")

    def _key(self, node: Tree) -> str:
        node = _strip(node)
        if node.data == "identifier":
            return str(node.children[0])
        value = self.eval(node)
        return known(_tostring(value), "object key")

    def _name(self, name: str) -> Any:
        if name in self.bindings:
            return self.bindings[name]
        if name in ("true", "false"):
            return name == "true"
        if name == "null":
            return None
        if name in ("var", "local", "module", "data", "path", "each", "count") or name.startswith(_RESOURCE_PREFIXES):
            return _Root(self.module, name)
        if name in _TYPE_WORDS:
            return name
        raise EvalError(f"{self.module.address or 'root'}: unknown name {name}")

    def _call(self, node: Tree) -> Any:
        name = str(node.children[0].children[0])
        args_node = node.children[1] if len(node.children) > 1 else None
        arg_nodes = [c for c in args_node.children if isinstance(c, Tree)] if args_node is not None else []
        expand = args_node is not None and any(isinstance(c, Token) and str(c) == "..." for c in args_node.children)
        if name == "can":
            try:
                self.eval(arg_nodes[0])
                return True
            except Exception:  # noqa: BLE001 - can() is exactly that
                return False
        if name == "try":
            for arg in arg_nodes:
                try:
                    return self.eval(arg)
                except Exception:  # noqa: BLE001 - try() is exactly that
                    continue
            raise EvalError("try(): no argument evaluated")
        if name in ("file", "templatefile"):
            path = Path(known(self.eval(arg_nodes[0]), name))
            text = path.read_text(encoding="utf-8")
            if name == "file":
                return text
            variables = self.eval(arg_nodes[1])
            return Scope(self.module, dict(variables)).eval(_parse_expression(json.dumps(text)))
        args = [self.eval(a) for a in arg_nodes]
        if expand:
            args = args[:-1] + list(args[-1])
        function = FUNCTIONS.get(name)
        if function is None:
            raise EvalError(f"function {name}() is not supported by the evaluator")
        # Functions that only move values around keep an unknown inside; any
        # other function of an unknown is unknown, as in plan.
        unknown = _first_unknown(args)
        if unknown is not None and name not in _MOVE_VALUES:
            return unknown
        return function(*args)

    def _traverse(self, node: Tree) -> Any:
        base, step = node.children
        value = self.eval(base)
        if node.data == "get_attr_expr_term":
            return _get(value, str(step.children[0].children[0]))
        # index: `[expr]` or `.0`
        index_children = [c for c in step.children]
        if len(index_children) == 1 and isinstance(index_children[0], Tree):
            index = self.eval(index_children[0])
        else:
            index = int("".join(str(c) for c in index_children))
        return _index(value, index)

    def _binary(self, node: Tree) -> Any:
        operands: list[Any] = []
        operators: list[str] = []
        current = node
        conditional = None
        while True:
            left, term = current.children
            operands.append(left)
            operators.append(str(term.children[0].children[0]))
            right = term.children[1]
            if isinstance(right, Tree) and right.data == "binary_op":
                current = right
                continue
            if isinstance(right, Tree) and right.data == "conditional":
                conditional = right
                operands.append(right.children[0])
            else:
                operands.append(right)
            break
        value = self._reduce([self.eval(o) for o in operands], operators)
        if conditional is None:
            return value
        if isinstance(value, Unknown):
            return value
        return self.eval(conditional.children[1] if value else conditional.children[2])

    def _reduce(self, values: list[Any], operators: list[str]) -> Any:
        # Tightest level first; left to right within a level.
        for level in reversed(_PRECEDENCE):
            i = 0
            while i < len(operators):
                if operators[i] in level:
                    values[i : i + 2] = [_apply(operators[i], values[i], values[i + 1])]
                    del operators[i]
                else:
                    i += 1
        return values[0]

    def _for(self, node: Tree, tuple_: bool) -> Any:
        parts = [c for c in node.children if isinstance(c, Tree)]
        intro = parts[0]
        names = [str(c.children[0]) for c in intro.children if isinstance(c, Tree) and c.data == "identifier"]
        collection = self.eval([c for c in intro.children if isinstance(c, Tree) and c.data != "identifier"][0])
        if isinstance(collection, Unknown):
            return collection
        condition = parts[-1] if parts[-1].data == "for_cond" else None
        bodies = parts[1:-1] if condition is not None else parts[1:]
        items = list(collection.items()) if isinstance(collection, dict) else list(enumerate(collection))
        out_list: list[Any] = []
        out_map: dict[str, Any] = {}
        for key, value in items:
            bound = dict(self.bindings)
            if len(names) == 2:
                bound[names[0]], bound[names[1]] = key, value
            else:
                bound[names[0]] = value
            inner = Scope(self.module, bound)
            if condition is not None:
                test = inner.eval([c for c in condition.children if isinstance(c, Tree)][0])
                if not test:
                    continue
            if tuple_:
                out_list.append(inner.eval(bodies[0]))
            else:
                out_map[known(_tostring(inner.eval(bodies[0])), "for key")] = inner.eval(bodies[1])
        return out_list if tuple_ else out_map


# The resource types a reference may start with.
_RESOURCE_PREFIXES = ("aws_", "random_", "tls_", "time_", "archive_", "null_")
_MOVE_VALUES = {"merge", "concat", "coalesce", "lookup"}


def _apply(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, Unknown):
        return a
    if isinstance(b, Unknown):
        return b
    ops = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
        "%": lambda: a % b,
        "==": lambda: a == b,
        "!=": lambda: a != b,
        "<": lambda: a < b,
        ">": lambda: a > b,
        "<=": lambda: a <= b,
        ">=": lambda: a >= b,
        "&&": lambda: bool(a) and bool(b),
        "||": lambda: bool(a) or bool(b),
    }
    return ops[op]()


class _Root:
    """The first step of a reference: var, local, module, data, path or a resource type."""

    def __init__(self, module: Module, name: str):
        self.module, self.name = module, name
        self.kind: str | None = None

    def get(self, attr: str) -> Any:
        m = self.module
        if self.name == "var":
            return m.var(attr)
        if self.name == "local":
            return m.local(attr)
        if self.name == "module":
            return _ModuleRef(m.module(attr))
        if self.name == "path":
            return str(m.directory)
        if self.name == "data":
            return _DataType(m, attr)
        return m.resource(self.name, attr)


class _DataType:
    def __init__(self, module: Module, kind: str):
        self.module, self.kind = module, kind

    def get(self, name: str) -> Any:
        return self.module.resource(self.kind, name, data=True)


class _ModuleRef:
    def __init__(self, module: Module):
        self.module = module

    def get(self, name: str) -> Any:
        return self.module.output(name)


def _get(value: Any, name: str) -> Any:
    if isinstance(value, Unknown):
        return value.step(f".{name}")
    if isinstance(value, (_Root, _DataType, _ModuleRef)):
        return value.get(name)
    if isinstance(value, Instance):
        return value.attr(name)
    if isinstance(value, dict):
        if name not in value:
            raise EvalError(f"no attribute {name} in {sorted(value)}")
        return value[name]
    raise EvalError(f"cannot read .{name} of {type(value).__name__}")


def _index(value: Any, index: Any) -> Any:
    if isinstance(value, Unknown):
        return value.step(f"[{json.dumps(index)}]")
    if isinstance(value, Instance):
        raise EvalError(f"{value.ref} has neither count nor for_each")
    if isinstance(index, Unknown):
        return index
    return value[index]


def _split_template(text: str) -> list[Any]:
    """A string template's literal parts and its ${...} interpolations, parsed."""
    parts: list[Any] = []
    i = 0
    literal = []
    while i < len(text):
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
            continue
        if text.startswith("${", i):
            depth, j, quoted = 1, i + 2, False
            while j < len(text) and depth:
                c = text[j]
                if c == '"' and text[j - 1] != "\\":
                    quoted = not quoted
                elif not quoted and c == "{":
                    depth += 1
                elif not quoted and c == "}":
                    depth -= 1
                j += 1
            if literal:
                parts.append(_unescape("".join(literal)))
                literal = []
            parts.append(_parse_expression(text[i + 2 : j - 1].strip()))
            i = j
            continue
        if text.startswith("%{", i):
            raise EvalError("template directives (%{...}) are not supported")
        literal.append(text[i])
        i += 1
    if literal:
        parts.append(_unescape("".join(literal)))
    return parts or [""]


def _unescape(text: str) -> str:
    return text.encode("utf-8").decode("unicode_escape") if "\\" in text else text


def load(root: Path, variables: dict[str, Any], stand_ins: dict[str, Any]) -> Module:
    """The root module at `root`, with `variables` as its tfvars and the stand-ins."""
    return Module(root.resolve(), variables, "", stand_ins)


def tfvars(path: Path) -> dict[str, Any]:
    """A .tfvars file's values (literals only, as tfvars allow)."""
    attributes, _ = _parse_body(_PARSER.parse(path.read_text(encoding="utf-8") + "\n").children[0])
    module = Module.__new__(Module)
    module.address, module.stand_ins = "tfvars", {}
    return {k: Scope(module, {}).eval(v) for k, v in attributes.items()}
