"""Nodes: the training-set synthesis steps on IMAGE batches (head-pose view bank, geometric caption,
identity-and-pose filter). Glue over ``pulid_flux.pose.head_view``, ``pulid_flux.dataset.scene`` and
``pulid_flux.synthesis``; ``pulid-studio dataset synthesize`` runs the same steps over a view plan.
"""

import logging

import torch
from comfy_api.v0_0_2 import io, ui

from ..pulid_flux import pose as posekit
from ..pulid_flux.dataset.analysis import detect_faces
from ..pulid_flux.dataset.options import SHOT_TYPES
from ..pulid_flux.dataset.scene import describe_scene, geometric_caption, subject_head_pose
from ..pulid_flux.pose.head_view import VIEW_FRAMINGS, head_view_pose
from ..pulid_flux.synthesis import Candidate, FilterSettings, View, filter_candidates, portrait_subject
from ..pulid_flux.synthesis.keep_filter import KEPT
from .dataset import _first, _frames
from .pose import to_image_batch
from .progress import comfy_progress
from .previews import image_preview, persistent_ui
from .types import FaceEngineType, PoseKeypointType, category, display_name, node_id

log = logging.getLogger(__name__)

CATEGORY = category("Dataset")
DETECT_MAX_SIDE = 1024


class HeadPoseView(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("HeadPoseView"),
            **persistent_ui(),
            display_name=display_name("Head-pose view bank"),
            category=CATEGORY,
            description="A pose-bank figure with its head turned to the given yaw, pitch and roll (OpenPose "
                        "nose, eyes and ears; points facing away are left out, as detectors do), for the pose "
                        "ControlNet to generate that view of the subject. Yaw > 0 turns the face toward the "
                        "image's right, pitch > 0 looks up, roll > 0 tilts the top of the head to the right.",
            inputs=[
                io.Combo.Input("framing", options=list(VIEW_FRAMINGS), default="portrait",
                               tooltip="headshot (close-up), portrait, medium or full_body."),
                io.Float.Input("yaw", default=0.0, min=-180.0, max=180.0, step=5.0,
                               tooltip="Degrees: 0 frontal, +-45 three-quarter, +-90 profile."),
                io.Float.Input("pitch", default=0.0, min=-90.0, max=90.0, step=5.0,
                               tooltip="Degrees: > 0 looks up, < 0 looks down."),
                io.Float.Input("roll", default=0.0, min=-90.0, max=90.0, step=5.0,
                               tooltip="Degrees: > 0 tilts the top of the head toward the image's right."),
                io.Int.Input("width", default=896, min=64, max=16384, step=8, tooltip="Canvas width in pixels."),
                io.Int.Input("height", default=1216, min=64, max=16384, step=8, tooltip="Canvas height in pixels."),
                io.Float.Input("body_turn", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="How far the shoulders and hips follow the head's yaw (0 = they face the "
                                       "camera, 1 = as far as the head, capped at 60 degrees)."),
            ],
            outputs=[
                PoseKeypointType.Output("keypoints", display_name="keypoints", tooltip="The view's pose (POSE_KEYPOINT)."),
                io.Image.Output("pose_image", display_name="pose_image", tooltip="The pose drawn as an OpenPose map."),
            ],
        )

    @classmethod
    def execute(cls, framing, yaw, pitch, roll, width, height, body_turn=0.5) -> io.NodeOutput:
        frame = head_view_pose(framing, width, height, yaw, pitch, roll, body_turn=body_turn)
        image = to_image_batch([posekit.render_pose(frame, width, height)])
        return io.NodeOutput([frame], image, ui=image_preview(cls, image))


def _subject(reference_frames, engine):
    if not reference_frames:
        return None
    return portrait_subject(reference_frames[0], engine, name="reference", required=True,
                            detect_max_side=DETECT_MAX_SIDE)


class GeometricCaption(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("GeometricCaption"),
            display_name=display_name("Dataset: geometric caption"),
            category=CATEGORY,
            description="Captions each image from its faces: the trigger first, where the subject is (on the left, "
                        "in the center, on the right, as seen in the image), the other people (how many, where), "
                        "the head angle (frontal, three-quarter, profile, from the landmarks) and the framing, "
                        "then the text. The subject is the face most like the reference, else the largest.",
            is_input_list=True,
            inputs=[
                io.Image.Input("images", tooltip="The training images (batches; a list of different sizes works)."),
                FaceEngineType.Input("face_engine", tooltip="Face engine: dlib (CPU, unrestricted) or insightface."),
                io.String.Input("trigger", default="ohwx man", tooltip="First in every caption."),
                io.Combo.Input("framing", options=["none", *SHOT_TYPES], default="none",
                               tooltip="The framing word to add (none: leave it out)."),
                io.String.Input("text", default="", multiline=True, tooltip="Appended to every caption."),
                io.Image.Input("reference", optional=True, tooltip="A photo of the subject, to pick their face."),
            ],
            outputs=[io.String.Output(display_name="captions", is_output_list=True, tooltip="One caption per image.")],
        )

    @classmethod
    def execute(cls, images, face_engine, trigger, framing, text, reference=None) -> io.NodeOutput:
        engine, trigger = _first(face_engine), str(_first(trigger))
        framing, text = _first(framing), str(_first(text, "") or "")
        subject = _subject(_frames(reference), engine)
        captions = []
        frames = _frames(images)
        progress = comfy_progress(len(frames))
        for n, frame in enumerate(frames, 1):
            faces = detect_faces(engine, frame, DETECT_MAX_SIDE)
            if not faces:
                raise ValueError(f"image {n}: no face found by {engine.name}; a geometric caption needs the "
                                 "subject's face")
            best = 0 if subject is None else max(range(len(faces)), key=lambda i: subject.similarities([faces[i]])[0])
            size = (frame.shape[1], frame.shape[0])
            facts = describe_scene(faces[best].bbox, [f.bbox for i, f in enumerate(faces) if i != best],
                                   image_size=size, head_pose=subject_head_pose(faces[best], size),
                                   framing=None if framing == "none" else framing)
            captions.append(geometric_caption(trigger, facts, text))
            if progress:
                progress(n, len(frames), "caption")
        return io.NodeOutput(captions, ui=ui.PreviewText("\n".join(captions)))


class IdentityPoseFilter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("IdentityPoseFilter"),
            display_name=display_name("Dataset: identity-and-pose filter"),
            category=CATEGORY,
            description="Keeps the generated views that show the subject as asked: a face is found, its identity "
                        "to the reference passes (a lower threshold for turned heads), its head pose matches the "
                        "requested yaw and pitch, and it is no near-duplicate; at most K are kept. dlib's detector "
                        "sees faces up to about 45 degrees of yaw: profiles need insightface.",
            is_input_list=True,
            inputs=[
                io.Image.Input("images", tooltip="Candidates of one view (batches; a list of different sizes works)."),
                FaceEngineType.Input("face_engine", tooltip="Face engine: dlib (to ~45 deg of yaw) or insightface."),
                io.Image.Input("reference", tooltip="The portrait the identity is compared with."),
                io.Float.Input("yaw", default=0.0, min=-180.0, max=180.0, step=5.0, tooltip="The requested yaw."),
                io.Float.Input("pitch", default=0.0, min=-90.0, max=90.0, step=5.0, tooltip="The requested pitch."),
                io.Int.Input("keep", default=2, min=1, max=64, tooltip="K: at most this many are kept."),
                io.Float.Input("yaw_tolerance", default=0.0, min=0.0, max=90.0, step=1.0,
                               tooltip="0 = the view band's (frontal 15, three-quarter 20, profile 25 degrees)."),
                io.Float.Input("similarity_threshold", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="0 = the engine's threshold for this view's angle band."),
            ],
            outputs=[
                io.Image.Output(display_name="kept", is_output_list=True, tooltip="The kept images, best first."),
                io.String.Output(display_name="report", tooltip="One line per image: decision, identity, head pose."),
            ],
        )

    @classmethod
    def execute(cls, images, face_engine, reference, yaw, pitch, keep, yaw_tolerance,
                similarity_threshold) -> io.NodeOutput:
        engine = _first(face_engine)
        view = View("view", yaw=float(_first(yaw)), pitch=float(_first(pitch)))
        threshold, tolerance = float(_first(similarity_threshold)), float(_first(yaw_tolerance))
        settings = FilterSettings(per_view=int(_first(keep)), yaw_tolerance=tolerance or None,
                                  thresholds={view.angle: threshold} if threshold > 0 else {})
        subject = _subject(_frames(reference), engine)
        frames = _frames(images)
        candidates = [Candidate(name=f"image_{n}", view=view, seed=n, image=f) for n, f in enumerate(frames, 1)]
        filter_candidates(candidates, engine, subject, settings, progress=comfy_progress(len(frames)))
        lines = []
        for c in candidates:
            sim = "" if c.similarity is None else f", identity {c.similarity:.3f} (>= {c.threshold:.2f})"
            pose = "" if c.pose is None else f", yaw {c.pose.yaw:+.0f} pitch {c.pose.pitch:+.0f}"
            lines.append(f"{c.name}: {c.status}{'' if c.reason is None else ' (' + c.reason + ')'}{sim}{pose}"
                         + (f"; {c.detail}" if c.detail else ""))
        kept = sorted((c for c in candidates if c.status == KEPT), key=lambda c: -(c.similarity or 0.0))
        text = f"{len(kept)} of {len(candidates)} kept\n" + "\n".join(lines)
        log.info("identity-and-pose filter: %s", text.splitlines()[0])
        images_out = [torch.from_numpy(frames[c.seed - 1].copy()).float().div(255.0).unsqueeze(0) for c in kept]
        return io.NodeOutput(images_out, text, ui=ui.PreviewText(text))


NODE_LIST = [HeadPoseView, GeometricCaption, IdentityPoseFilter]
