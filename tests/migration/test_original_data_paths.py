"""The original library's module paths of the in-graph sources import."""

import ats.core


def test_original_data_module_paths_import_the_same_classes():
    from ats.data.base import MultiResolutionBatch
    from ats.data.from_tensors import FromTensors

    assert MultiResolutionBatch is ats.core.MultiResolutionBatch
    assert FromTensors is ats.core.FromTensors
