"""Which adapter methods each Lambda function can call, read statically from the code.

From each function's handler (template.yaml's `Handler`), the walk follows every call through
vss_restore's own modules and stops at the adapters (functions/vss_restore/aws/*.py, whose
AWS calls tests/security/calls.py reads). It knows which adapter a call goes to from types
written in the code: parameter and field annotations (`ec2: Ec2`), constructors
(`ec2 = Ec2()`) and return annotations (`waiting = ledger.waiting(...)` is a `Waiting`).

It is precise rather than generous, and says so when it cannot be: a call it cannot resolve
raises `Unresolved`, naming the file, line and call, so that a test fails instead of a
permission going unseen. Unresolved are: a method with an adapter method's name on a value
of unknown type; a local variable called that holds nothing the walk knows; an adapter (or
one of its bound methods) handed to code outside vss_restore; a callable parameter bound to
something other than a function the walk can follow; boto3 used outside an adapter.

What it does not follow, because nothing in vss_restore needs it: properties and dunder
methods of our classes (attribute reads, operators and `with` are not calls; `hidden_calls`
walks them all, and a test demands they reach no adapter), and dynamic calls such as
`getattr` (an adapter handed to a builtin is refused). Branches are not evaluated: a call
behind a setting counts, unless the caller names its function as excluded (`call_map`).
"""

import ast
import builtins
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.security.calls import Adapter, adapters

PACKAGE = "vss_restore"
SOURCES = Path(__file__).resolve().parents[2] / "functions"


class Unresolved(Exception):
    """A call the walk cannot follow; the message names it."""


# --- the types the walk tracks --------------------------------------------------------------


@dataclass(frozen=True)
class T:
    """What a value is: an adapter instance, an instance or the class object of one of our
    classes, a module of ours, a callable parameter, or something outside vss_restore."""

    kind: str  # adapter | instance | class | module | function | callable | external
    module: str = ""
    name: str = ""  # the class, module-level function or adapter name


EXTERNAL = T("external")
CALLABLE = T("callable")
UNKNOWN: T | None = None


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # alias -> (module, symbol)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    constants: dict[str, ast.expr] = field(default_factory=dict)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _index(name: str, path: Path, tree: ast.Module) -> Module:
    module = Module(name, path, tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                module.imports[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0],
                    "",
                )
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                module.imports[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.FunctionDef):
            module.functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            module.classes[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    module.constants[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            module.constants[node.target.id] = node.value or node.annotation
        elif isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    for alias in inner.names:
                        module.imports[alias.asname or alias.name] = (inner.module, alias.name)
    return module


@functools.cache
def _sources(root: Path = SOURCES) -> dict[str, Module]:
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        name = _module_name(path, root)
        found[name] = _index(name, path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


@functools.cache
def _adapter_classes() -> dict[tuple[str, str], Adapter]:
    """(module, class) -> the adapter, for the classes calls.py reads as adapters."""
    found = {}
    for module in _sources().values():
        for name in module.classes:
            if name in adapters() and module.name.startswith(f"{PACKAGE}.aws."):
                found[(module.name, name)] = adapters()[name]
    return found


# A function's local types depend on its code only: shared by every walk (the node is kept
# so that its id is not reused).
_ENVIRONMENTS: dict[tuple[int, str, str], tuple[ast.AST, dict[str, set["T | None"]]]] = {}


# --- the walk -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    module: str
    qualname: str  # "name" or "Class.name"

    def __str__(self) -> str:
        return f"{self.module.removeprefix(PACKAGE + '.')}.{self.qualname}"


@dataclass
class Walk:
    """One role's walk: every adapter method reached, with the first path that reached it."""

    modules: Mapping[str, Module]
    excluded: frozenset[str] = frozenset()  # functions ("steps.x") not followed
    reached: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _seen: set[Function] = field(default_factory=set)
    _modules_seen: set[str] = field(default_factory=set)

    # -- resolving names --------------------------------------------------------------------

    def symbol(self, module: str, name: str, depth: int = 0) -> T | None:
        """What `name` means at the top of `module`."""
        if depth > 10:
            return UNKNOWN
        found = self.modules.get(module)
        if found is None:
            return EXTERNAL if not module.startswith(PACKAGE) else UNKNOWN
        if name in found.functions:
            return T("function", module, name)
        if name in found.classes:
            return T("class", module, name)  # an adapter's too: `instance` tells them apart
        if name in found.imports:
            source, symbol = found.imports[name]
            if not symbol:
                return T("module", source) if source in self.modules else EXTERNAL
            if f"{source}.{symbol}" in self.modules:
                return T("module", f"{source}.{symbol}")
            if source in self.modules:
                return self.symbol(source, symbol, depth + 1)
            return EXTERNAL
        if name in found.constants:
            return self.value_type(found.constants[name], module, {}, depth + 1)
        if hasattr(builtins, name):
            return EXTERNAL
        return UNKNOWN

    def annotation(self, node: ast.expr | None, module: str) -> set[T | None]:
        """The types an annotation allows (None, `X | None` and `Optional` dropped)."""
        if node is None:
            return {UNKNOWN}
        if isinstance(node, ast.Constant):
            if node.value is None:
                return set()
            if isinstance(node.value, str):
                return self.annotation(ast.parse(node.value, mode="eval").body, module)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.annotation(node.left, module) | self.annotation(node.right, module)
        if isinstance(node, ast.Subscript):
            base = node.value
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
            if name == "Callable":
                return {CALLABLE}
            if name == "Optional":
                return self.annotation(node.slice, module)
            return {EXTERNAL}  # a container: its items are not tracked
        if isinstance(node, ast.Name | ast.Attribute):
            found = self.expr_symbol(node, module)
            if found is not None and found.kind == "class":
                return {self.instance(found)}
            if isinstance(node, ast.Name):
                constant = self.modules[module].constants.get(node.id)
                if constant is not None and isinstance(constant, ast.Subscript):
                    return self.annotation(constant, module)  # an alias: Handler = Callable[...]
            return {found if found is None else EXTERNAL}
        return {UNKNOWN}

    def instance(self, cls: T) -> T:
        if (cls.module, cls.name) in _adapter_classes():
            return T("adapter", cls.module, cls.name)
        return T("instance", cls.module, cls.name)

    def expr_symbol(self, node: ast.expr, module: str) -> T | None:
        """A dotted name at module scope (`steps.create_volume`, `Ec2`)."""
        if isinstance(node, ast.Name):
            return self.symbol(module, node.id)
        if isinstance(node, ast.Attribute):
            owner = self.expr_symbol(node.value, module)
            if owner is not None and owner.kind == "module":
                return self.symbol(owner.module, node.attr)
            if owner is not None and owner.kind == "external":
                return EXTERNAL
        return UNKNOWN

    def value_type(
        self, node: ast.expr, module: str, env: Mapping[str, set[T | None]], depth: int = 0
    ) -> T | None:
        """What an expression is, when the walk can tell (one type; None if unknown or mixed)."""
        types = self.value_types(node, module, env, depth)
        return next(iter(types)) if len(types) == 1 else UNKNOWN

    def value_types(
        self, node: ast.expr, module: str, env: Mapping[str, set[T | None]], depth: int = 0
    ) -> set[T | None]:
        if depth > 10:
            return {UNKNOWN}
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            return {self.symbol(module, node.id, depth + 1)}
        if isinstance(node, ast.Attribute):
            found: set[T | None] = set()
            for owner in self.value_types(node.value, module, env, depth + 1):
                found |= self.attribute_types(owner, node.attr, depth)
            return found
        if isinstance(node, ast.Call):
            found = set()
            for target in self.value_types(node.func, module, env, depth + 1):
                found |= self.returns(target, node.func, depth)
            return found
        if isinstance(node, ast.Constant | ast.JoinedStr | ast.Dict | ast.List | ast.Set):
            return {EXTERNAL}
        if isinstance(node, ast.IfExp):
            return self.value_types(node.body, module, env, depth + 1) | self.value_types(
                node.orelse, module, env, depth + 1
            )
        if isinstance(node, ast.BoolOp):
            found = set()
            for value in node.values:
                found |= self.value_types(value, module, env, depth + 1)
            return found
        if isinstance(node, ast.Subscript):
            held = self.value_types(node.value, module, env, depth + 1)
            return {EXTERNAL} if held == {EXTERNAL} else {UNKNOWN}
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            return {EXTERNAL}
        if isinstance(node, ast.Tuple | ast.BinOp | ast.Compare | ast.BoolOp | ast.UnaryOp):
            return {EXTERNAL} if isinstance(node, ast.Tuple | ast.Compare) else {UNKNOWN}
        return {UNKNOWN}

    def attribute_types(self, owner: T | None, attr: str, depth: int) -> set[T | None]:
        if owner is None:
            return {UNKNOWN}
        if owner.kind == "module":
            return {self.symbol(owner.module, attr, depth + 1)}
        if owner.kind == "external":
            return {EXTERNAL}
        if owner.kind in {"instance", "adapter"}:
            cls = self.modules[owner.module].classes[owner.name]
            for node in cls.body:
                if (
                    isinstance(node, ast.AnnAssign)
                    and isinstance(node.target, ast.Name)
                    and node.target.id == attr
                ):
                    return self.annotation(node.annotation, owner.module)
            method = self.method(owner, attr)
            if method is not None:
                return {T("function", owner.module, f"{owner.name}.{attr}")}
        if owner.kind == "class" and self.method(owner, attr) is not None:
            return {T("function", owner.module, f"{owner.name}.{attr}")}
        return {UNKNOWN}

    def returns(self, target: T | None, func: ast.expr, depth: int) -> set[T | None]:
        """What calling `target` gives."""
        if target is None:
            return {UNKNOWN}
        if target.kind == "external":
            return {EXTERNAL}
        if target.kind == "class":
            return {self.instance(target)}
        if target.kind == "function":
            node = self.definition(Function(target.module, target.name))
            if node is not None and node.returns is not None:
                return self.annotation(node.returns, target.module)
        return {UNKNOWN}

    def method(self, cls: T, name: str) -> ast.FunctionDef | None:
        node = self.modules[cls.module].classes[cls.name]
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == name:
                return item
        for base in node.bases:  # our own base classes
            found = self.expr_symbol(base, cls.module)
            if found is not None and found.kind == "class":
                inherited = self.method(found, name)
                if inherited is not None:
                    return inherited
        return None

    def definition(self, function: Function) -> ast.FunctionDef | None:
        module = self.modules[function.module]
        if "." not in function.qualname:
            return module.functions.get(function.qualname)
        cls, name = function.qualname.split(".", 1)
        return self.method(T("class", function.module, cls), name)

    # -- walking ----------------------------------------------------------------------------

    def start(self, module: str, name: str) -> "Walk":
        self.function(Function(module, name), ())
        return self

    def function(self, function: Function, path: tuple[str, ...]) -> None:
        if function in self._seen or str(function).removeprefix("handlers.") in self.excluded:
            return
        self._seen.add(function)
        node = self.definition(function)
        if node is None:
            raise Unresolved(f"{function}: no such function")
        self.module_code(function.module, path)
        cls = function.qualname.split(".")[0] if "." in function.qualname else ""
        env = self.environment(node, function.module, cls)
        nested = {
            n.name for n in ast.walk(node) if isinstance(n, ast.FunctionDef) and n is not node
        }
        here = (*path, str(function))
        for decorator in node.decorator_list:
            self.call_target(decorator, function.module, env, nested, here, decorator)
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call):
                self.call(inner, function.module, env, nested, here)

    def module_code(self, module: str, path: tuple[str, ...]) -> None:
        """What runs when the module is imported (cold start) counts too."""
        if module in self._modules_seen:
            return
        self._modules_seen.add(module)
        here = (*path, f"{module.removeprefix(PACKAGE + '.')}:<import>")
        for statement in self.modules[module].tree.body:
            if isinstance(statement, ast.FunctionDef | ast.ClassDef):
                continue
            for inner in ast.walk(statement):
                if isinstance(inner, ast.Call):
                    self.call(inner, module, {}, set(), here)

    def environment(self, node: ast.FunctionDef, module: str, cls: str) -> dict[str, set[T | None]]:
        """Each local name's possible types, from annotations and assignments, in order."""
        key = (id(node), module, cls)
        if key not in _ENVIRONMENTS:
            _ENVIRONMENTS[key] = (node, self._environment(node, module, cls))
        return _ENVIRONMENTS[key][1]

    def _environment(
        self, node: ast.FunctionDef, module: str, cls: str
    ) -> dict[str, set[T | None]]:
        env: dict[str, set[T | None]] = {}
        for function in (n for n in ast.walk(node) if isinstance(n, ast.FunctionDef | ast.Lambda)):
            arguments = function.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            for position, argument in enumerate(every):
                if function is node and cls and position == 0:
                    classmethod = any(
                        isinstance(d, ast.Name) and d.id == "classmethod"
                        for d in node.decorator_list
                    )
                    owner = T("class", module, cls)
                    env[argument.arg] = {owner if classmethod else self.instance(owner)}
                    continue
                env.setdefault(argument.arg, set()).update(
                    self.annotation(argument.annotation, module)
                )
            for extra in (arguments.vararg, arguments.kwarg):
                if extra is not None:
                    env.setdefault(extra.arg, set()).add(EXTERNAL)
        assignments = sorted(
            (
                n
                for n in ast.walk(node)
                if isinstance(n, ast.Assign | ast.AnnAssign | ast.NamedExpr)
            ),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for assignment in assignments:
            if isinstance(assignment, ast.AnnAssign):
                if isinstance(assignment.target, ast.Name):
                    env.setdefault(assignment.target.id, set()).update(
                        self.annotation(assignment.annotation, module)
                    )
                continue
            targets = (
                [assignment.target]
                if isinstance(assignment, ast.NamedExpr)
                else list(assignment.targets)
            )
            for target in targets:
                self.bind(target, assignment.value, module, env)
        for other in ast.walk(node):  # loop, with, except and comprehension targets
            names: list[ast.expr] = []
            if isinstance(other, ast.For | ast.comprehension):
                names = [other.target]
            elif isinstance(other, ast.withitem) and other.optional_vars is not None:
                names = [other.optional_vars]
            for name in (n for t in names for n in ast.walk(t) if isinstance(n, ast.Name)):
                env.setdefault(name.id, set()).add(UNKNOWN)
            if isinstance(other, ast.ExceptHandler) and other.name:
                env.setdefault(other.name, set()).add(EXTERNAL)
        return env

    def bind(
        self, target: ast.expr, value: ast.expr, module: str, env: dict[str, set[T | None]]
    ) -> None:
        if isinstance(target, ast.Name):
            env.setdefault(target.id, set()).update(self.value_types(value, module, env))
            # What else it may hold: our functions and classes named in the value, not called
            # there (`error = {...}.get(action, CommandFailed)`; `error(...)` calls either).
            called = {id(n.func) for n in ast.walk(value) if isinstance(n, ast.Call)}
            dotted = {id(n.value) for n in ast.walk(value) if isinstance(n, ast.Attribute)}
            for inner in ast.walk(value):
                if isinstance(inner, ast.Name | ast.Attribute) and id(inner) not in called | dotted:
                    held = self.expr_symbol(inner, module)
                    if held is not None and held.kind in {"function", "class"}:
                        env[target.id].add(held)
        elif isinstance(target, ast.Tuple):
            # `a, b = f()` with `-> tuple[A, B]`: element by element.
            parts = self.tuple_returns(value, module, env)
            for position, element in enumerate(target.elts):
                if isinstance(element, ast.Name):
                    known = parts[position] if parts and position < len(parts) else {UNKNOWN}
                    env.setdefault(element.id, set()).update(known)

    def tuple_returns(
        self, value: ast.expr, module: str, env: Mapping[str, set[T | None]]
    ) -> list[set[T | None]]:
        if not isinstance(value, ast.Call):
            return []
        [target] = list(self.value_types(value.func, module, env)) or [UNKNOWN]
        if target is None or target.kind != "function":
            return []
        node = self.definition(Function(target.module, target.name))
        returns = node.returns if node is not None else None
        if isinstance(returns, ast.Subscript) and isinstance(returns.slice, ast.Tuple):
            return [self.annotation(e, target.module) for e in returns.slice.elts]
        return []

    def call(
        self,
        node: ast.Call,
        module: str,
        env: Mapping[str, set[T | None]],
        nested: set[str],
        path: tuple[str, ...],
    ) -> None:
        self.call_target(node.func, module, env, nested, path, node)

    def where(self, module: str, node: ast.AST) -> str:
        line = getattr(node, "lineno", 0)
        return (
            f"{self.modules[module].path.relative_to(SOURCES.parent)}:{line}: {ast.unparse(node)}"
        )

    def call_target(
        self,
        func: ast.expr,
        module: str,
        env: Mapping[str, set[T | None]],
        nested: set[str],
        path: tuple[str, ...],
        node: ast.AST,
    ) -> None:
        """Follow one call (or decorator): to an adapter method, into our code, or outside."""
        if isinstance(func, ast.Name) and func.id in nested:
            return  # a function defined here: its body is part of this one's
        if isinstance(func, ast.Call):  # f(...)(...): the inner call decides
            targets = self.value_types(func.func, module, env)
            if targets and all(t is not None and t.kind == "external" for t in targets):
                self.external(node, module, env)
                return
            raise Unresolved(f"{self.where(module, node)}: a call of what a call returned")
        if not isinstance(func, ast.Name | ast.Attribute):
            raise Unresolved(f"{self.where(module, node)}: a call the walk cannot name")
        targets = self.value_types(func, module, env)
        if isinstance(func, ast.Attribute):
            owners = self.value_types(func.value, module, env)
            if None in owners:
                self.unknown_receiver(func, module, node, path)
                self.external(node, module, env)
                owners = owners - {None}
            for owner in owners:
                assert owner is not None
                if owner.kind == "adapter":
                    self.adapter_method(owner, func.attr, module, node, path)
                elif owner.kind in {"instance", "class"}:
                    method = self.method(owner, func.attr)
                    if method is not None:
                        self.into(
                            T("function", owner.module, f"{owner.name}.{func.attr}"),
                            node,
                            module,
                            env,
                            nested,
                            path,
                        )
                    else:
                        self.external(node, module, env)  # Exception's, dataclass's own
                elif owner.kind == "module":
                    for target in targets:
                        self.into(target, node, module, env, nested, path)
                else:  # external, or a callable's attribute
                    self.external(node, module, env)
            return
        for target in targets:
            self.into(target, node, module, env, nested, path)

    def into(
        self,
        target: T | None,
        node: ast.AST,
        module: str,
        env: Mapping[str, set[T | None]],
        nested: set[str],
        path: tuple[str, ...],
    ) -> None:
        if target is None:
            raise Unresolved(f"{self.where(module, node)}: calls something the walk cannot name")
        if target.kind == "callable":
            return  # a callable parameter: what its callers bind is checked where they call
        if target.kind == "external":
            self.external(node, module, env)
        elif target.kind == "class":
            if (target.module, target.name) in _adapter_classes():
                self.arguments_hold_no_adapter(node, module, env)  # its client, if any
                return
            for special in ("__init__", "__post_init__"):
                if self.method(target, special) is not None:
                    self.function(Function(target.module, f"{target.name}.{special}"), path)
        elif target.kind == "function":
            function = Function(target.module, target.name)
            if isinstance(node, ast.Call):
                self.bound_callables(function, node, module, env, nested, path)
            self.function(function, path)
        else:
            raise Unresolved(f"{self.where(module, node)}: calls a {target.kind}")

    def adapter_method(
        self, owner: T, method: str, module: str, node: ast.AST, path: tuple[str, ...]
    ) -> None:
        adapter = _adapter_classes()[(owner.module, owner.name)]
        if method not in adapter.direct:
            raise Unresolved(f"{self.where(module, node)}: {adapter.name} has no {method}")
        self.reached.setdefault(f"{adapter.name}.{method}", path)

    def unknown_receiver(
        self, func: ast.Attribute, module: str, node: ast.AST, path: tuple[str, ...]
    ) -> None:
        """A method on a value of unknown type: harmless unless an adapter has that method,
        or one of our classes has a method of that name that reaches an adapter."""
        if any(func.attr in a.direct for a in adapters().values()):
            raise Unresolved(
                f"{self.where(module, node)}: .{func.attr}() on a value of unknown type; "
                "annotate it with its adapter"
            )
        for other in self.modules.values():
            for cls in other.classes:
                owner = T("class", other.name, cls)
                if (other.name, cls) in _adapter_classes():
                    continue
                if self.method(owner, func.attr) is not None:
                    before = dict(self.reached)
                    self.function(Function(other.name, f"{cls}.{func.attr}"), path)
                    if self.reached != before:
                        raise Unresolved(
                            f"{self.where(module, node)}: .{func.attr}() on a value of unknown "
                            f"type, and {cls}.{func.attr} reaches an adapter"
                        )

    def bound_callables(
        self,
        function: Function,
        node: ast.Call,
        module: str,
        env: Mapping[str, set[T | None]],
        nested: set[str],
        path: tuple[str, ...],
    ) -> None:
        """A callable parameter is followed where it is bound: a function defined in the
        caller (walked as part of it), a lambda, one of our functions, an adapter method."""
        definition = self.definition(function)
        assert definition is not None
        parameters = [*definition.args.posonlyargs, *definition.args.args]
        if "." in function.qualname and parameters and parameters[0].arg in {"self", "cls"}:
            parameters = parameters[1:]
        bound = list(zip(parameters, node.args, strict=False))
        by_name = {p.arg: p for p in [*parameters, *definition.args.kwonlyargs]}
        bound += [(by_name[k.arg], k.value) for k in node.keywords if k.arg in by_name]
        for parameter, argument in bound:
            if CALLABLE not in self.annotation(parameter.annotation, function.module):
                continue
            if isinstance(argument, ast.Lambda) or (
                isinstance(argument, ast.Name) and argument.id in nested
            ):
                continue
            types = self.value_types(argument, module, env)
            if types == {CALLABLE}:
                continue
            if isinstance(argument, ast.Attribute):
                owners = self.value_types(argument.value, module, env)
                if len(owners) == 1 and (owner := next(iter(owners))) and owner.kind == "adapter":
                    self.adapter_method(owner, argument.attr, module, node, path)
                    continue
            if len(types) == 1 and (target := next(iter(types))) and target.kind == "function":
                self.function(Function(target.module, target.name), path)
                continue
            raise Unresolved(
                f"{self.where(module, node)}: {ast.unparse(argument)} bound to the callable "
                f"{parameter.arg} of {function}"
            )

    def external(self, node: ast.AST, module: str, env: Mapping[str, set[T | None]]) -> None:
        """A call outside vss_restore: it must not be handed an adapter, nor build a client."""
        if isinstance(node, ast.Call):
            if ast.unparse(node.func).split(".")[0] in {"boto3", "botocore"}:
                raise Unresolved(f"{self.where(module, node)}: an AWS client outside an adapter")
            self.arguments_hold_no_adapter(node, module, env)

    def arguments_hold_no_adapter(
        self, node: ast.AST, module: str, env: Mapping[str, set[T | None]]
    ) -> None:
        if not isinstance(node, ast.Call):
            return
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            for inner in _values(argument):
                if not isinstance(inner, ast.Name | ast.Attribute | ast.Call):
                    continue
                holders = self.value_types(inner, module, env)
                if isinstance(inner, ast.Attribute):  # a bound method of an adapter
                    holders |= self.value_types(inner.value, module, env)
                if any(h is not None and h.kind == "adapter" for h in holders):
                    raise Unresolved(
                        f"{self.where(module, node)}: {ast.unparse(inner)} handed to code "
                        "outside vss_restore, which the walk cannot follow"
                    )


def _values(node: ast.expr) -> Iterable[ast.expr]:
    """The values an argument is made of; a call inside it is a call of its own (its result
    is the value) and a lambda's body runs as part of the function that holds it."""
    yield node
    if isinstance(node, ast.Call | ast.Lambda):
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            yield from _values(child)


# --- the map --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handler:
    function: str  # the template's logical ID
    module: str
    name: str

    @property
    def role(self) -> str:
        return f"{self.function}Role"


def handlers(resources: Mapping[str, Mapping[str, object]]) -> list[Handler]:
    """Every Lambda function of the synthesized template and its handler."""
    found = []
    for logical, body in resources.items():
        if body["Type"] != "AWS::Lambda::Function":
            continue
        properties = body["Properties"]
        assert isinstance(properties, Mapping)
        module, _, name = str(properties["Handler"]).rpartition(".")
        found.append(Handler(logical, module, name))
    return found


def reached(
    handler: Handler,
    excluded: Iterable[str] = (),
    modules: Mapping[str, Module] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Adapter method ("Ec2.volume") -> the first call path from the handler to it."""
    walk = Walk(modules if modules is not None else _sources(), frozenset(excluded))
    if handler.module not in walk.modules:
        raise Unresolved(f"{handler.function}: no module {handler.module} under functions/")
    return walk.start(handler.module, handler.name).reached


def call_map(
    resources: Mapping[str, Mapping[str, object]],
    excluded: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Role -> the adapter methods its function's code can call, each with a call path.

    `excluded`: role -> functions ("reconcile._remove") not followed, for code behind a
    setting whose permission exists only with that setting.
    """
    return {
        handler.role: reached(handler, (excluded or {}).get(handler.role, ()))
        for handler in handlers(resources)
    }


def hidden_calls() -> dict[str, dict[str, tuple[str, ...]]]:
    """What our classes' properties and dunder methods reach (the walk follows calls only,
    so these must reach no adapter): "module.Class.name" -> adapter methods reached."""
    found = {}
    modules = _sources()
    for module in modules.values():
        for cls, node in module.classes.items():
            if (module.name, cls) in _adapter_classes():
                continue
            for item in node.body:
                if not isinstance(item, ast.FunctionDef):
                    continue
                is_property = any(
                    ast.unparse(d) in {"property", "functools.cached_property", "cached_property"}
                    for d in item.decorator_list
                )
                if is_property or (item.name.startswith("__") and item.name.endswith("__")):
                    walk = Walk(modules)
                    walk.function(Function(module.name, f"{cls}.{item.name}"), ())
                    found[f"{module.name}.{cls}.{item.name}"] = walk.reached
    return found
