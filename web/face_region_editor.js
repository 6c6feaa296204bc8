// Face-region editing helpers for web/face_picker.js: the widget value, box geometry and the mask
// bitmap. No ComfyUI imports here (the frontend also loads this file as an extension module; it
// registers nothing).
//
// Widget value (docs/face_region.md): a JSON list with one entry per image of the batch, each null
// or {"box": [x, y, width, height], "mask": "data:image/png;base64,...", "hash": "<content hash>"},
// in the photo's pixels after EXIF orientation. Entries with a hash belong to the photo with that
// hash; entries without one to the image at their position.

export const MIN_BOX_SIDE = 8;          // pulid_flux.face.region.MIN_BOX_SIDE
export const MASK_MAX_SIDE = 512;       // masks are stored at most this large (stretched over the photo)
export const HANDLE = 7;                // corner handle size, canvas units

/** Parse the widget value; [] for "" or anything unreadable (the node reports errors itself). */
export function parseRegions(text) {
    if (typeof text !== "string" || !text.trim()) return [];
    try {
        const value = JSON.parse(text);
        if (Array.isArray(value)) return value;
        return value && typeof value === "object" ? [value] : [];
    } catch {
        return [];
    }
}

/** The entry that applies to image ``index`` of ``images`` (payload entries with image_hash). */
export function regionFor(entries, images, index) {
    const hash = images[index]?.image_hash;
    const byHash = entries.find((e) => e && e.hash && e.hash === hash);
    if (byHash) return byHash;
    const positional = entries[index];
    return positional && !positional.hash ? positional : null;
}

/** The widget value with ``region`` (or null) for image ``index``; one entry per current image. */
export function withRegion(entries, images, index, region) {
    const out = images.map((_, i) => regionFor(entries, images, i));
    out[index] = region ? { ...region, hash: images[index].image_hash || undefined } : null;
    if (out.every((e) => e === null)) return "";
    return JSON.stringify(out.map((e) => (e ? clean(e) : null)));
}

function clean(region) {
    const out = { box: region.box.map((v) => Math.round(v * 100) / 100) };
    if (region.mask) out.mask = region.mask;
    if (region.hash) out.hash = region.hash;
    return out;
}

/** Box [x, y, w, h] from two corners, clamped to the image. */
export function boxFromCorners(a, b, size) {
    const [w, h] = size;
    const x0 = Math.max(0, Math.min(a[0], b[0])), y0 = Math.max(0, Math.min(a[1], b[1]));
    const x1 = Math.min(w, Math.max(a[0], b[0])), y1 = Math.min(h, Math.max(a[1], b[1]));
    return [x0, y0, x1 - x0, y1 - y0];
}

export function boxIsUsable(box) {
    return !!box && box[2] >= MIN_BOX_SIDE && box[3] >= MIN_BOX_SIDE;
}

/** What a press at image point ``p`` on ``box`` grabs: a corner ("nw", "ne", "sw", "se"), the body
 * ("move"), or nothing (null). ``tolerance`` is in image pixels. */
export function grab(box, p, tolerance) {
    if (!box) return null;
    const [x, y, w, h] = box;
    const corners = { nw: [x, y], ne: [x + w, y], sw: [x, y + h], se: [x + w, y + h] };
    for (const [name, c] of Object.entries(corners)) {
        if (Math.abs(p[0] - c[0]) <= tolerance && Math.abs(p[1] - c[1]) <= tolerance) return name;
    }
    return p[0] >= x && p[0] <= x + w && p[1] >= y && p[1] <= y + h ? "move" : null;
}

/** ``box`` after dragging what ``grabbed`` by ``delta`` (image pixels), kept inside the image. */
export function dragBox(box, grabbed, delta, size) {
    const [x, y, w, h] = box;
    if (grabbed === "move") {
        const nx = Math.min(Math.max(0, x + delta[0]), size[0] - w);
        const ny = Math.min(Math.max(0, y + delta[1]), size[1] - h);
        return [nx, ny, w, h];
    }
    const fixed = { nw: [x + w, y + h], ne: [x, y + h], sw: [x + w, y], se: [x, y] }[grabbed];
    const moving = { nw: [x, y], ne: [x + w, y], sw: [x, y + h], se: [x + w, y + h] }[grabbed];
    return boxFromCorners(fixed, [moving[0] + delta[0], moving[1] + delta[1]], size);
}

/** Mask bitmap size for a photo: the photo shrunk to at most MASK_MAX_SIDE (aspect kept). */
export function maskSize(size) {
    const k = Math.min(1, MASK_MAX_SIDE / Math.max(size[0], size[1]));
    return [Math.max(1, Math.round(size[0] * k)), Math.max(1, Math.round(size[1] * k))];
}

/** A mask canvas: opaque white where face, transparent elsewhere (``full`` starts all face). */
export function newMask(size, full) {
    const [w, h] = maskSize(size);
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    if (full) {
        const ctx = canvas.getContext("2d");
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, w, h);
    }
    return canvas;
}

/** Load a mask data URL (any PNG: light and opaque = face) into a mask canvas. */
export function loadMask(url, size) {
    return new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => {
            const canvas = newMask(size, false);
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
            const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
            const px = data.data;
            for (let i = 0; i < px.length; i += 4) {
                const face = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2] >= 128 && px[i + 3] >= 128;
                px[i] = px[i + 1] = px[i + 2] = face ? 255 : 0;
                px[i + 3] = face ? 255 : 0;
            }
            ctx.putImageData(data, 0, 0);
            resolve(canvas);
        };
        img.onerror = () => reject(new Error("unreadable mask image"));
        img.src = url;
    });
}

/** Paint (or erase) a round brush stroke from image point ``a`` to ``b`` into the mask canvas. */
export function strokeMask(mask, a, b, radius, size, erase) {
    const k = mask.width / size[0];
    const ctx = mask.getContext("2d");
    ctx.save();
    ctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = "#fff";
    ctx.lineCap = "round";
    ctx.lineWidth = 2 * radius * k;
    ctx.beginPath();
    ctx.moveTo(a[0] * k, a[1] * k);
    ctx.lineTo(b[0] * k + 0.01, b[1] * k);
    ctx.stroke();
    ctx.restore();
}

/** The dark veil drawn over the non-face part of the photo (a canvas the size of the mask). */
export function maskVeil(mask) {
    const veil = document.createElement("canvas");
    veil.width = mask.width;
    veil.height = mask.height;
    const ctx = veil.getContext("2d");
    ctx.fillStyle = "rgba(20, 0, 40, 0.6)";
    ctx.fillRect(0, 0, veil.width, veil.height);
    ctx.globalCompositeOperation = "destination-out";
    ctx.drawImage(mask, 0, 0);
    return veil;
}

/** The input photo a Load Image node feeds in: its widget value "sub/name.png [input]" as a /view reference. */
export function loadImageReference(value) {
    if (typeof value !== "string" || !value) return null;
    let type = "input";
    const match = value.match(/^(.*) \[(input|output|temp)\]$/);
    if (match) [, value, type] = match;
    const slash = value.lastIndexOf("/");
    return { filename: value.slice(slash + 1), subfolder: slash >= 0 ? value.slice(0, slash) : "", type };
}
