from typing import Callable, TypeVar

_T = TypeVar("_T")

def blocking(fn: Callable[..., _T], *args: object, **kwargs: object) -> _T: ...
