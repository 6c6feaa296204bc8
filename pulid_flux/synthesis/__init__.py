"""From one portrait to a training set: multi-view synthesis, the identity-and-pose filter, grounding.

* :mod:`.views`: the view plan (head yaw / pitch / roll, distance, expression, lighting, background),
  the canonical-portrait view and the sample views.
* :mod:`.keep_filter`: which candidates of a view are kept (face found, identity, head pose,
  no near-duplicate, at most K per view); which face engine can verify which views.
* :mod:`.grounding`: regularization images of other people, checked not to be the subject.
* :mod:`.assemble`: generated files -> ``train/``, ``reg/``, ``ai-toolkit.yaml``, ``coverage.csv``,
  ``report.md``, the contact sheet.

Generating the candidates is the run engine's job (``pulid-studio dataset synthesize``, see
``api_client.runner.synthesis``); nothing here talks to ComfyUI.
"""

from .assemble import (CONFIG_YAML, CONTACT_SHEET, COVERAGE_CSV, RECORD_JSON, REG_DIR, REPORT_MD, TRAIN_DIR,
                       candidate_file, finish_set, grounding_file, judge_candidates, plan_candidates,
                       portrait_subject, references_subject, write_grounding_images,
                       write_training_images)
from .grounding import GroundingImage, check_not_subject, class_phrase, grounding_plan
from .keep_filter import (ENGINE_VIEW_LIMITS, IDENTITY_THRESHOLDS, KEPT, REJECTED, UNVERIFIED, Candidate,
                          FilterSettings, filter_candidates, identity_threshold, view_limit)
from .views import (DISTANCES, SAMPLE_VIEWS, View, ViewPlanError, canonical_view, default_view_plan,
                    load_view_plan, parse_view_plan, tiny_view_plan)

__all__ = [
    "CONFIG_YAML", "CONTACT_SHEET", "COVERAGE_CSV", "RECORD_JSON", "REG_DIR", "REPORT_MD", "TRAIN_DIR",
    "candidate_file", "finish_set", "grounding_file", "judge_candidates", "plan_candidates", "portrait_subject",
    "references_subject",
    "write_grounding_images", "write_training_images",
    "GroundingImage", "check_not_subject", "class_phrase", "grounding_plan",
    "ENGINE_VIEW_LIMITS", "IDENTITY_THRESHOLDS", "KEPT", "REJECTED", "UNVERIFIED", "Candidate", "FilterSettings",
    "filter_candidates", "identity_threshold", "view_limit",
    "DISTANCES", "SAMPLE_VIEWS", "View", "ViewPlanError", "canonical_view", "default_view_plan", "load_view_plan",
    "parse_view_plan", "tiny_view_plan",
]
