"""How pat turns Python objects into bytes plus separate buffers, and back.

Everything pat sends (``pat.Channel`` messages, ``pat.Executor`` tasks and
results) is pickled with protocol 5. Buffers large enough to be worth it stay
out of the pickle stream ("out of band"): the transport moves them by
reference (a group buffer, :mod:`pat._dataplane`) or copies them once
(:mod:`pat._process_pool`), and the receiver rebuilds the objects on top of
them without another copy.

What goes out of band:

- every ``pickle.PickleBuffer`` of at least ``INBAND_LIMIT`` bytes that a
  ``__reduce_ex__(5)`` produces: numpy arrays (C or Fortran contiguous) and
  any class written for protocol 5. They arrive as zero-copy views;
- ``memoryview`` objects (which plain pickle refuses): C-contiguous ones of at
  least ``INBAND_LIMIT`` bytes arrive as memoryviews of the shared bytes,
  with their format and shape; others are copied in band;
- ``bytes`` and ``bytearray`` of at least ``BYTES_OUT_OF_BAND_MINIMUM`` bytes
  (pickle's ``buffer_callback`` never sees them, so a C ``persistent_id`` hook
  picks them out). They keep their type, so the receiver makes one copy out
  of the shared buffer: CPython's bytes and bytearray always own their
  memory. Send a memoryview of them to receive a view instead.
- ``pat.Buffer`` objects: by reference; a receiver in the group gets the
  pat.Buffer itself, one outside it a memoryview of its copy.
"""

import io
import pickle
import threading

import _pat

PROTOCOL = 5

# PickleBuffers and memoryviews smaller than this are pickled in band: an
# extra buffer costs more than copying a few kilobytes.
INBAND_LIMIT = 4096
# bytes/bytearray below this are pickled in band: they are copied on arrival
# either way, and only pages of at least this size are shared without a copy.
BYTES_OUT_OF_BAND_MINIMUM = _pat.ZERO_COPY_MINIMUM

# How each out-of-band buffer is rebuilt, one byte per buffer in Pickled.kinds.
KIND_PICKLE_BUFFER = ord("p")  # consumed by pickle's NEXT_BUFFER opcodes, in order
KIND_PERSISTENT = ord("x")     # named by index in a persistent id

# Persistent ids (tuples pickled in band in place of the object).
_BYTES = "b"
_BYTEARRAY = "a"
_VIEW = "m"           # ("m", index, format, shape, readonly)
_GROUP_BUFFER = "B"   # ("B", index)
_INBAND_VIEW = "M"    # ("M", bytes, format, shape, readonly)


class Pickled:
    """An object pickled with protocol 5: ``data``, the pickle stream, and
    ``buffers``, the objects whose bytes travel out of band (each supports
    the buffer protocol and is contiguous), with ``kinds`` (bytes, one per
    buffer) saying how the receiver consumes each. ``plain``: the stream
    names no persistent id, so plain ``pickle.loads`` reads it."""

    __slots__ = ("data", "buffers", "kinds", "plain")

    def __init__(self, data, buffers, kinds, plain=False):
        self.data = data
        self.buffers = buffers
        self.kinds = kinds
        self.plain = plain


class _Pickling:
    """One thread's pickler, kept between dumps(): making a Pickler and its
    BytesIO cost more than pickling a small task (6.4 µs against 2.7 µs
    for a function and an int, this machine), and every pat.Executor round
    trip pickles twice. ``dumps`` clears its memo after each use, so it
    keeps nothing alive."""

    # A stream grown past this is dropped rather than kept for the next
    # (small) message: BytesIO keeps its largest size.
    KEEP_AT_MOST = 1 << 20

    def __init__(self):
        self.busy = False  # a __reduce__ pickling through pat again gets a pickler of its own
        self.out_of_band = True
        self.buffers = []
        self.kinds = bytearray()
        self.plain = True
        self.stream = io.BytesIO()
        self.pickler = pickle.Pickler(self.stream, protocol=PROTOCOL, buffer_callback=self._on_pickle_buffer)
        self.pickler.persistent_id = _pat.out_of_band_hook(BYTES_OUT_OF_BAND_MINIMUM, self._on_large_bytes_or_view,
                                                           _pat.Buffer)

    def dumps(self, obj, out_of_band):
        self.busy = True
        self.out_of_band = out_of_band
        buffers = self.buffers = []
        kinds = self.kinds = bytearray()
        self.plain = True
        stream = self.stream
        try:
            self.pickler.dump(obj)
            data = stream.getvalue()
        finally:
            self.pickler.clear_memo()
            stream.seek(0)
            stream.truncate()
            self.buffers = self.kinds = None
            self.busy = False
        return Pickled(data, buffers, bytes(kinds), self.plain)

    def _on_pickle_buffer(self, pickle_buffer):
        try:
            nbytes = pickle_buffer.raw().nbytes
        except BufferError:  # not contiguous: pickle copies it in band
            return True
        if not self.out_of_band or nbytes < INBAND_LIMIT:
            return True
        self.buffers.append(pickle_buffer)
        self.kinds.append(KIND_PICKLE_BUFFER)
        return False

    def _on_large_bytes_or_view(self, value):
        out_of_band = self.out_of_band
        if type(value) is _pat.Buffer:  # by reference, whatever its size
            if not out_of_band:
                self.plain = False
                return (_INBAND_VIEW, bytes(value), "B", (value.size,), False)
            tag = _GROUP_BUFFER
        elif type(value) is memoryview:
            if not out_of_band or not value.c_contiguous or value.nbytes < INBAND_LIMIT:
                self.plain = False
                return (_INBAND_VIEW, value.tobytes(), value.format, value.shape, value.readonly)
            tag = _VIEW
        elif not out_of_band:
            return None
        else:
            tag = _BYTES if type(value) is bytes else _BYTEARRAY
        self.plain = False
        buffers = self.buffers
        buffers.append(value)
        self.kinds.append(KIND_PERSISTENT)
        if tag == _VIEW:
            return (_VIEW, len(buffers) - 1, value.format, value.shape, value.readonly)
        return (tag, len(buffers) - 1)


_per_thread = threading.local()


def dumps(obj, out_of_band=True):
    """Pickles ``obj``; a :class:`Pickled`. With ``out_of_band=False`` every
    buffer stays in the pickle stream (memoryviews are copied into it)."""
    pickling = getattr(_per_thread, "pickling", None)
    if pickling is None or pickling.busy:
        pickling = _Pickling()
        if getattr(_per_thread, "pickling", None) is None:
            _per_thread.pickling = pickling
    pickled = pickling.dumps(obj, out_of_band)
    if len(pickled.data) > _Pickling.KEEP_AT_MOST and _per_thread.pickling is pickling:
        _per_thread.pickling = None
    return pickled


def loads(data, kinds, views, plain=False):
    """Unpickles what :func:`dumps` made. ``views`` are the out-of-band
    buffers as the receiver has them (writable memoryviews, normally), in the
    sender's order; objects rebuilt on them share their memory. ``plain``:
    the stream names no persistent id (``Pickled.plain``)."""
    if plain and not views and not kinds:
        return pickle.loads(data)
    if len(kinds) != len(views):
        raise ValueError(f"{len(views)} out-of-band buffers for {len(kinds)} announced")
    pickle_buffers = [view for view, kind in zip(views, kinds) if kind == KIND_PICKLE_BUFFER]
    if plain:  # pickle.loads makes no Unpickler object and no BytesIO: half the time for a small task
        return pickle.loads(data, buffers=pickle_buffers)
    # Always with persistent_load otherwise: small memoryviews are
    # persistent ids without a buffer of their own.
    unpickler = pickle.Unpickler(io.BytesIO(data), buffers=pickle_buffers)
    unpickler.persistent_load = lambda persistent_id: _rebuild(persistent_id, views)
    return unpickler.load()


def _rebuild(persistent_id, views):
    tag = persistent_id[0]
    if tag == _BYTES:
        return bytes(views[persistent_id[1]])
    if tag == _BYTEARRAY:
        return bytearray(views[persistent_id[1]])
    if tag == _GROUP_BUFFER:
        view = views[persistent_id[1]]
        owner = view.obj
        if type(owner) is _pat.Buffer and view.nbytes == owner.size:
            return owner
        return view  # copied outside the group: no pat.Buffer here
    if tag == _VIEW:
        _, index, format, shape, readonly = persistent_id
        return _shaped(memoryview(views[index]), format, shape, readonly)
    if tag == _INBAND_VIEW:
        _, data, format, shape, readonly = persistent_id
        return _shaped(memoryview(data if readonly else bytearray(data)), format, shape, readonly)
    raise pickle.UnpicklingError(f"unknown pat persistent id {tag!r}")


def _shaped(view, format, shape, readonly):
    """``view`` (bytes) as the sender's memoryview had it. memoryview.cast
    knows only native single-character formats: other views (numpy's '>d',
    structs) arrive as flat bytes."""
    try:
        view = view.cast("B").cast(format, shape) if (format, shape) != ("B", (view.nbytes,)) else view
    except (TypeError, ValueError):
        view = view.cast("B")
    return view.toreadonly() if readonly else view
