"""BiSeNet face parsing (facexlib's ``parsing_bisenet.pth``, 19 CelebAMask-HQ classes).

The network is written here with facexlib's parameter names, so its weights file loads directly
(strictly, tensors only) without importing facexlib, whose package import pulls in its detection
and tracking modules. Only the main head runs; the two auxiliary heads exist for loading.

Input: RGB in [0, 1], (B, 3, 512, 512) for the aligned face; ImageNet mean/std is applied here.
Output: the argmax label map (B, 1, H, W).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PulidWeightsError
from ..weights import read_state_dict

log = logging.getLogger(__name__)

EXPECTED = "facexlib's parsing_bisenet.pth (BiSeNet face parser, 19 classes)"
NUM_CLASSES = 19
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: CelebAMask-HQ label names in BiSeNet's order (ParseNet uses another order)
LABELS = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
          "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat")


class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout, kernel=3, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


class ResNet18(nn.Module):
    """The backbone; returns the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = ((64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2))
        for i, (cin, cout, stride) in enumerate(widths, start=1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout)))

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinement(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x):
        feat = self.conv(x)
        attention = torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean(dim=(2, 3), keepdim=True))))
        return feat * attention


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, kernel=1)

    def forward(self, x):
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))  # broadcast = nearest upsampling
        up32 = self.conv_head32(F.interpolate(self.arm32(feat32) + context, feat16.shape[2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(feat16) + up32, feat8.shape[2:], mode="nearest"))
        return feat8, up16, up32


class FeatureFusion(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, kernel=1)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial, context):
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean(dim=(2, 3), keepdim=True)))))
        return feat * attention + feat


class OutputHead(nn.Module):
    def __init__(self, cin, mid, num_classes):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, num_classes, 1, bias=False)

    def forward(self, x):
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """facexlib's BiSeNet; ``forward`` returns the main head's logits at the input resolution."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, num_classes)
        # Auxiliary (training-time) heads: kept so the checkpoint loads strictly, never run.
        self.conv_out16 = OutputHead(128, 64, num_classes)
        self.conv_out32 = OutputHead(128, 64, num_classes)

    def forward(self, x):
        feat8, context8, _ = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))
        return F.interpolate(logits, x.shape[2:], mode="bilinear", align_corners=True)


def load_bisenet(path, device="cpu", dtype=torch.float32) -> BiSeNet:
    """The parser from ``models/facexlib/parsing_bisenet.pth`` (tensors only, strict keys and shapes)."""
    path = Path(path)
    tensors, _ = read_state_dict(path, expect=EXPECTED)
    model = BiSeNet(NUM_CLASSES)
    expected = model.state_dict()
    # Older BatchNorm checkpoints lack the step counters; they do not affect inference.
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in tensors and k not in optional]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise PulidWeightsError(path, f"does not match the BiSeNet architecture; expected {EXPECTED}",
                                missing=missing, unexpected=unexpected)
    wrong = [f"{k} {tuple(tensors[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in tensors and tensors[k].shape != v.shape]
    if wrong:
        raise PulidWeightsError(path, "wrong tensor shapes: " + ", ".join(wrong[:6]) + f"; expected {EXPECTED}")
    state = {k: v for k, v in tensors.items()}
    for k in optional - set(tensors):
        state[k] = expected[k]
    model.load_state_dict(state, strict=True)
    model.source = str(path)
    log.info("face parser BiSeNet loaded from %s", path.name)
    return model.to(device=device, dtype=dtype).eval()


def to_parser_input(images) -> torch.Tensor:
    """RGB uint8 (H, W, 3) / (B, H, W, 3) arrays, or float tensors (B, 3, H, W) in [0, 1] -> float (B, 3, H, W)."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.shape[-1] != 3 or images.ndim not in (3, 4):
            raise ValueError(f"face parser input array must be RGB uint8 (H, W, 3) or (B, H, W, 3), got "
                             f"{images.shape} {images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images)).float().div(255.0)
        images = images[None] if images.ndim == 3 else images
        return images.permute(0, 3, 1, 2)
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"face parser input tensor must be (B, 3, H, W) RGB in [0, 1], got "
                         f"{tuple(images.shape) if torch.is_tensor(images) else type(images).__name__}")
    return images


@torch.no_grad()
def parse_labels(model: BiSeNet, images) -> torch.Tensor:
    """Label map (B, 1, H, W), int64 in 0..18, of RGB faces (see :func:`to_parser_input`)."""
    x = to_parser_input(images)
    p = next(model.parameters())
    x = x.to(device=p.device, dtype=p.dtype)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return model((x - mean) / std).argmax(dim=1, keepdim=True)
