"""Framework conformance checks (not part of CI): imbstat's presets against each framework's own code.

Each module loads the framework's anchor-labelling files from a source tree given on the command line, runs them
image by image on a COCO file, and exits 1 if a count differs from imbstat's preset:

    python -m benchmarks.conformance.vs_mmdet MMDET_ROOT [COCO_JSON] [--preset ...]
    python -m benchmarks.conformance.vs_detectron2 D2_SRC [COCO_JSON]
    python -m benchmarks.conformance.vs_torchvision VISION_SRC|--installed [COCO_JSON] [--rpn]

Their results are in benchmarks/RESULTS.md.
"""
