"""PuLID overhead per denoising step, measured against ComfyUI's own Flux blocks.

One FLUX.1 transformer step is 19 double blocks + 38 single blocks; PuLID adds 20 adapter calls (our
hooks). At 1024x1024 a step sees 4096 image + 512 text tokens. A real-size step does not fit a CPU
benchmark, so every width is divided by ``--scale`` (head width 128 kept, so heads shrink) while the
token counts stay at their 1024² values. We time, median of ``--repeats`` runs each:

- one ComfyUI ``DoubleStreamBlock`` and one ``SingleStreamBlock`` forward,
- one ``PulidBlockHook`` call with the identity active (its cost minus the wrapped block's),
- the same hook with the sigma outside [start_at, end_at],

and compose: overhead_ratio = 20·t_hook / (19·t_double + 38·t_single). ``flop_floor_ratio`` is the
same ratio counted in FLOPs (matmuls only), which an implementation that wastes nothing reaches.

    COMFYUI_PATH=/path/to/ComfyUI python -m benchmarks.pulid_overhead --json
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

DOUBLE, SINGLE, HOOKS = 19, 38, 20
REAL = {"hidden": 3072, "head_dim": 128, "mlp_ratio": 4.0, "ca_inner": 2048, "id_dim": 2048, "id_tokens": 32}


def dims(scale: int) -> dict:
    d = {k: (v // scale if k in ("hidden", "ca_inner", "id_dim") else v) for k, v in REAL.items()}
    d["heads"] = d["hidden"] // d["head_dim"]
    d["ca_heads"] = max(1, d["ca_inner"] // d["head_dim"])
    return d


def flops(d: dict, img: int, txt: int) -> dict:
    """Multiply-add FLOPs (2 per MAC) of the matmuls of one block / one adapter call."""
    h, L = d["hidden"], img + txt
    mlp = int(h * d["mlp_ratio"])
    attn = 2 * 2 * L * L * h                       # QK^T and AV over the joint sequence
    double = 2 * L * h * 3 * h + attn + 2 * L * h * h + 2 * L * 2 * h * mlp
    single = 2 * L * h * (3 * h + mlp) + attn + 2 * L * (h + mlp) * h
    inner, q = d["ca_inner"], d["id_tokens"]
    ca = (2 * img * h * inner                      # to_q on image tokens
          + 2 * q * d["id_dim"] * 2 * inner        # to_kv on the ID tokens
          + 2 * 2 * img * q * inner                # scores and AV against 32 keys
          + 2 * img * inner * h)                   # to_out
    return {"double": double, "single": single, "ca": ca,
            "step": DOUBLE * double + SINGLE * single, "pulid": HOOKS * ca}


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def import_comfy(path: str):
    if path not in sys.path:
        sys.path.insert(0, path)
    from comfy.cli_args import args
    args.cpu = True
    import comfy.ldm.flux.layers as layers
    import comfy.ops
    return layers, comfy.ops.disable_weight_init


def run(scale: int, repeats: int, img: int, txt: int, comfyui: str, threads: int | None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    layers, ops = import_comfy(comfyui)
    from pulid_flux.engine.ca import PerceiverAttentionCA
    from pulid_flux.engine.inject import Injection, PulidBlockHook

    torch.manual_seed(0)
    d = dims(scale)
    h = d["hidden"]
    double = layers.DoubleStreamBlock(h, d["heads"], d["mlp_ratio"], qkv_bias=True, operations=ops).eval()
    single = layers.SingleStreamBlock(h, d["heads"], d["mlp_ratio"], operations=ops).eval()
    for block in (double, single):
        for p in block.parameters():
            torch.nn.init.normal_(p, std=0.02)
    axes = [16, 56, 56] if d["head_dim"] == 128 else [d["head_dim"] // 4, 3 * d["head_dim"] // 8, 3 * d["head_dim"] // 8]
    pe_embed = layers.EmbedND(dim=d["head_dim"], theta=10000, axes_dim=axes)
    side = int(img ** 0.5)
    ids = torch.zeros(1, txt + img, 3)
    ids[0, txt:, 1] = torch.arange(img) // side
    ids[0, txt:, 2] = torch.arange(img) % side
    pe = pe_embed(ids)
    x_img, x_txt, vec = torch.randn(1, img, h), torch.randn(1, txt, h), torch.randn(1, h)

    ca = PerceiverAttentionCA(dim=h, kv_dim=d["id_dim"], inner=d["ca_inner"], heads=d["ca_heads"]).eval()
    for p in ca.parameters():
        torch.nn.init.normal_(p, std=0.02)
    pulid = type("Pulid", (), {"ca": [ca]})()
    tokens = torch.randn(1, d["id_tokens"], d["id_dim"])

    def injection(active: bool):
        window = (1.0, 0.0) if active else (0.2, 0.1)
        return Injection(pulid=pulid, tokens=tokens, uncond_tokens=None, weight=1.0,
                         sigma_start=window[0], sigma_end=window[1])

    options = {"sigmas": torch.tensor([0.5]), "cond_or_uncond": [0]}
    done = {"img": x_img, "txt": x_txt}
    passthrough = {"original_block": lambda args: done}   # the block's cost is timed separately
    hook_on = PulidBlockHook([injection(True)], 0, "double_block")
    hook_off = PulidBlockHook([injection(False)], 0, "double_block")

    with torch.inference_mode():
        t_double = median_time(lambda: double(img=x_img, txt=x_txt, vec=vec, pe=pe), repeats)
        t_single = median_time(lambda: single(torch.cat([x_txt, x_img], 1), vec=vec, pe=pe), repeats)
        args = {"img": x_img, "txt": x_txt, "transformer_options": options}
        t_bare = median_time(lambda: passthrough["original_block"](args), repeats)
        t_hook = median_time(lambda: hook_on(args, passthrough), repeats) - t_bare
        t_off = median_time(lambda: hook_off(args, passthrough), repeats) - t_bare

    step = DOUBLE * t_double + SINGLE * t_single
    f = flops(d, img, txt)
    return {
        "overhead_ratio": HOOKS * t_hook / step,
        "flop_floor_ratio": f["pulid"] / f["step"],
        "overhead_outside_window": HOOKS * max(t_off, 0.0) / step,
        "real_dims_flop_floor_ratio": flops(dims(1), img, txt)["pulid"] / flops(dims(1), img, txt)["step"],
        "scale": scale, "hidden": h, "image_tokens": img, "text_tokens": txt, "repeats": repeats,
        "seconds": {"double_block": t_double, "single_block": t_single, "ca_hook": t_hook,
                    "ca_hook_outside_window": t_off, "step": step},
        "threads": torch.get_num_threads(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"), help="ComfyUI checkout (COMFYUI_PATH)")
    parser.add_argument("--scale", type=int, default=4, help="divide FLUX widths by this (default 4: hidden 768)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image-tokens", type=int, default=4096, help="4096 = 1024x1024; 1024 = 512x512")
    parser.add_argument("--text-tokens", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    a = parser.parse_args(argv)
    if not a.comfyui:
        parser.error("set COMFYUI_PATH or --comfyui: the blocks timed are ComfyUI's own")
    if REAL["hidden"] % a.scale or (REAL["hidden"] // a.scale) % REAL["head_dim"]:
        parser.error(f"--scale must leave a width that is a multiple of the {REAL['head_dim']}-wide heads "
                     "(1, 2, 3, 4, 6, 8, 12 or 24)")
    result = run(a.scale, a.repeats, a.image_tokens, a.text_tokens, a.comfyui, a.threads)
    if a.json:
        print(json.dumps(result))
    else:
        s = result["seconds"]
        print(f"FLUX/{a.scale} (hidden {result['hidden']}), {a.image_tokens}+{a.text_tokens} tokens, "
              f"median of {a.repeats}")
        print(f"  double block {s['double_block'] * 1e3:.1f} ms, single block {s['single_block'] * 1e3:.1f} ms, "
              f"PuLID hook {s['ca_hook'] * 1e3:.2f} ms")
        print(f"  overhead {result['overhead_ratio']:.2%} (FLOP floor {result['flop_floor_ratio']:.2%}; "
              f"{result['overhead_ratio'] / result['flop_floor_ratio']:.2f}x the floor)")
        print(f"  outside [start_at, end_at]: {result['overhead_outside_window']:.4%}")
        print(f"  FLOP floor at real FLUX dimensions: {result['real_dims_flop_floor_ratio']:.2%}")


if __name__ == "__main__":
    main()
