"""Reference COCO box evaluation with pycocotools, for checking edgepipe's own.

argv: request.json result.json
request: {"images": [id...], "categories": [id...],
          "annotations": [{"image_id", "category_id", "bbox": [x, y, w, h],
                           "area", "iscrowd"}...],
          "detections": [{"image_id", "category_id", "bbox", "score"}...]}
result: {"stats": [12 floats, COCOeval.stats order], "seconds": evaluation time
         (COCO index + loadRes + evaluate + accumulate + summarize)}
"""

import contextlib
import io
import time

from edgepipe_stage import progress, run
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main(request):
    annotations = []
    for number, ann in enumerate(request["annotations"], start=1):
        ann = dict(ann)
        ann.setdefault("id", number)
        annotations.append(ann)
    dataset = {
        "images": [{"id": i} for i in request["images"]],
        "categories": [{"id": c, "name": str(c)} for c in request["categories"]],
        "annotations": annotations,
    }
    progress(0, 1, "pycocotools evaluation")
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        if request["detections"]:
            dt = gt.loadRes(request["detections"])
        else:
            dt = COCO()
            dt.dataset = {"images": dataset["images"], "categories": dataset["categories"],
                          "annotations": []}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    seconds = time.perf_counter() - start
    progress(1, 1, f"pycocotools took {seconds:.2f} s")
    return {"stats": [float(s) for s in evaluator.stats], "seconds": seconds}


if __name__ == "__main__":
    run(main)
