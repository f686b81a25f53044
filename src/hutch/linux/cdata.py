"""The few ctypes names linux/ uses, defined on _ctypes directly, as ctypes itself defines them.

`import ctypes` costs ~1.5 ms at every start of the runtime (it defines every C type, byte-order structures,
prototypes and Python API hooks); create, run and exec need a handful of types, Structure, byref and the C
library. These are the same _ctypes classes with the same definitions, so values mix freely with ctypes'
own (libseccomp.py, imported only to build a filter, uses ctypes). mypy sees ctypes' declarations.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ctypes import (
        CDLL,
        Array,
        Structure,
        addressof,
        byref,
        c_char,
        c_int,
        c_int32,
        c_long,
        c_size_t,
        c_uint,
        c_uint32,
        c_uint64,
        c_ulong,
        c_ushort,
        c_void_p,
        create_string_buffer,
        get_errno,
        sizeof,
    )
else:
    from _ctypes import (
        FUNCFLAG_CDECL,
        FUNCFLAG_USE_ERRNO,
        RTLD_LOCAL,
        Array,
        CFuncPtr,
        Structure,
        _SimpleCData,
        addressof,
        byref,
        dlopen,
        get_errno,
        sizeof,
    )

    class c_int(_SimpleCData):
        _type_ = "i"

    class c_uint(_SimpleCData):
        _type_ = "I"

    class c_long(_SimpleCData):
        _type_ = "l"

    class c_ulong(_SimpleCData):
        _type_ = "L"

    class c_ushort(_SimpleCData):
        _type_ = "H"

    class c_char(_SimpleCData):
        _type_ = "c"

    class c_void_p(_SimpleCData):
        _type_ = "P"

    c_int32 = c_int
    c_uint32 = c_uint
    c_uint64 = c_size_t = c_ulong  # LP64, as ctypes aliases them (x86_64, aarch64)

    def create_string_buffer(init, size=None):
        if isinstance(init, int):
            return (c_char * init)()
        buf = (c_char * (len(init) + 1 if size is None else size))()
        buf.value = init
        return buf

    class CDLL:
        """A loaded library whose functions return int and keep errno for get_errno, as ctypes.CDLL."""

        def __init__(self, name, use_errno=False):
            class _FuncPtr(CFuncPtr):
                _flags_ = FUNCFLAG_CDECL | (FUNCFLAG_USE_ERRNO if use_errno else 0)
                _restype_ = c_int

            self._FuncPtr = _FuncPtr
            self._handle = dlopen(name, RTLD_LOCAL)

        def __getattr__(self, name):
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            func = self._FuncPtr((name, self))
            func.__name__ = name
            setattr(self, name, func)
            return func


__all__ = [
    "CDLL",
    "Array",
    "Structure",
    "addressof",
    "byref",
    "c_char",
    "c_int",
    "c_int32",
    "c_long",
    "c_size_t",
    "c_uint",
    "c_uint32",
    "c_uint64",
    "c_ulong",
    "c_ushort",
    "c_void_p",
    "create_string_buffer",
    "get_errno",
    "sizeof",
]
