"""Fake of the XIR Python binding (module ``xir``) over JSON "xmodels" (see README.md)."""

from __future__ import annotations

import json
import os

FORMAT = "fake-xmodel/1"


class Tensor:
    def __init__(self, spec: dict) -> None:
        self.name = spec["name"]
        self.dims = list(spec["dims"])
        self._attrs = {"fix_point": spec["fix_point"]}
        self.dtype = "xint8"

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def get_attr(self, name: str):
        if name not in self._attrs:
            raise RuntimeError(f"[XIR_ATTR_NOT_EXIST] tensor {self.name} has no attr {name}")
        return self._attrs[name]

    def get_attrs(self) -> dict:
        return dict(self._attrs)

    def get_data_size(self) -> int:
        size = 1
        for d in self.dims:
            size *= d
        return size

    def __repr__(self) -> str:
        return f"<xir.Tensor named '{self.name}'>"


class Subgraph:
    def __init__(self, name: str, attrs: dict, parent: "Subgraph | None" = None,
                 inputs=(), outputs=(), children=()) -> None:
        self._name = name
        self._attrs = dict(attrs)
        self._parent = parent
        self._inputs = [Tensor(t) for t in inputs]
        self._outputs = [Tensor(t) for t in outputs]
        self._children = list(children)

    def get_name(self) -> str:
        return self._name

    @property
    def is_root(self) -> bool:
        return self._parent is None

    @property
    def is_leaf(self) -> bool:
        return not self._children

    @property
    def depth(self) -> int:
        return 0 if self._parent is None else self._parent.depth + 1

    def get_parent(self):
        return self._parent

    def get_children(self):
        # the real binding returns a set: no order promised
        return set(self._children)

    def get_children_num(self) -> int:
        return len(self._children)

    def toposort_child_subgraph(self) -> list:
        return list(self._children)

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def get_attr(self, name: str):
        if name not in self._attrs:
            raise RuntimeError(f"[XIR_ATTR_NOT_EXIST] subgraph {self._name} has no attr {name}")
        return self._attrs[name]

    def get_attrs(self) -> dict:
        return dict(self._attrs)

    def get_input_tensors(self) -> list:
        return list(self._inputs)

    def get_output_tensors(self) -> list:
        return list(self._outputs)

    def __repr__(self) -> str:
        return f"<xir.Subgraph named '{self._name}'>"


class Graph:
    def __init__(self, name: str, spec: dict) -> None:
        self._name = name
        self.spec = spec
        root = Subgraph("root", {}, None)
        root._children = [Subgraph(s["name"], s.get("attrs", {}), root, s.get("inputs", ()), s.get("outputs", ()))
                          for s in spec.get("subgraphs", [])]
        self._root = root

    @staticmethod
    def deserialize(fname: str) -> "Graph":
        if not os.path.isfile(fname):
            raise RuntimeError(f"[XIR_FILE_NOT_EXISTED][Cannot find the file.] {fname}")
        try:
            with open(fname) as f:
                spec = json.load(f)
        except (ValueError, UnicodeDecodeError):
            spec = None
        if not isinstance(spec, dict) or spec.get("format") != FORMAT:
            raise RuntimeError(f"[XIR_PROTOBUF_PARSE_FAILED] cannot parse {fname}")
        return Graph(spec.get("graph", "graph"), spec)

    def get_name(self) -> str:
        return self._name

    def get_root_subgraph(self) -> Subgraph:
        return self._root
