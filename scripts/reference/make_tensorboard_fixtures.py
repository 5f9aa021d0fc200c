"""Writes Tests/TrainingTests/Fixtures/tensorboard_events.bin with TensorBoard's own protobuf
classes and record writer, so the toolkit's event-file encoding is checked byte for byte
against the reader's side of the format.

Run: python scripts/reference/make_tensorboard_fixtures.py   (needs `pip install tensorboard`)
"""
import os

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "Tests", "TrainingTests", "Fixtures", "tensorboard_events.bin")


def scalars(wall_time, step, values):
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values])
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)


events = [
    event_pb2.Event(wall_time=1764633600.125, file_version="brain.Event:2"),
    scalars(1764633601.5, 0, [("val/loss", 3.25)]),
    scalars(1764633602.75, 1, [("train/loss", 2.5), ("train/learning_rate", 1e-4), ("train/grad_norm", 0.875),
                               ("train/tokens_per_s", 1234.5)]),
    scalars(1764633610.0, 300, [("train/loss", 1.0625), ("val/loss", 1.5), ("test/loss", 1.625)]),
]

with open(OUT, "wb") as f:
    writer = RecordWriter(f)
    for e in events:
        writer.write(e.SerializeToString())
print("wrote", OUT, os.path.getsize(OUT), "bytes")
