"""Building the int8 model prints nothing: onnxruntime's quantizer advice is silenced."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BUILD = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from feedback_pipelines.embedding.onnx import packaged_model
    from feedback_pipelines.embedding.quantize import quantized_model
    source, _ = packaged_model()
    quantized_model(source, Path(sys.argv[1]))
    # The quantizer must not have configured logging for the whole process either.
    assert not logging.getLogger().handlers, logging.getLogger().handlers
    logging.getLogger("x").warning("a later warning still prints")
    """
)


def test_building_the_int8_model_prints_no_quantizer_warning(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "pre-processing" not in out.stderr + out.stdout
    assert "WARNING:root" not in out.stderr
    assert "a later warning still prints" in out.stderr
    assert list(tmp_path.glob("*.onnx"))
