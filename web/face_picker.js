// Face picker and face-region editor for "Encode identity (PuLID-Flux Studio)".
//
// After a run, the node's UI payload `pulid_studio_faces` lists, per reference image, every
// detected face box (in the order face_index counts in), its content hash, the region used, a
// small copy of the photo and a source copy in ComfyUI's temp folder. When no image has a face the
// node sends the same payload over the websocket (event `pulid_studio.faces`) before its error.
// Before any run, the photo of a Load Image node wired to `images` is shown instead.
//
// The node then shows each photo with its faces numbered, the chosen one highlighted; clicking a
// face sets `face_index` (and `face_choice` to the order the numbers were made in). With the Box
// tool, dragging on the photo draws the face region (drag its body to move it, a corner to resize
// it); Paint / Erase edit its mask. The region is the `face_region` widget value (one JSON string,
// see docs/face_region.md), so it is saved with the workflow and sent with the prompt. Under each
// photo: the aligned crop Encode identity will encode for that region, asked from the server.
//
// Prototype callbacks are chained, never replaced: other extensions hooking the same node keep
// working. Drawing uses the classic LiteGraph canvas hooks (the default "Classic" node design).

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import {
    HANDLE, boxFromCorners, boxIsUsable, dragBox, grab, loadImageReference, loadMask, maskVeil, newMask,
    parseRegions, regionFor, strokeMask, withRegion,
} from "./face_region_editor.js";

const NODE_TYPE = "PulidStudioEncodeIdentity";
const PAYLOAD_KEY = "pulid_studio_faces";
const EVENT = "pulid_studio.faces";
const REGION_WIDGET = "face_region";
const PREVIEW_ROUTE = "/pulid_studio/face_region/preview";
const IMAGE_ROUTE = "/pulid_studio/face_region/image";
const MARGIN = 10;
const GAP = 8;
const LABEL_HEIGHT = 16;
const TOOLBAR_HEIGHT = 22;
const CROP_BAND = 104;           // under each photo: the aligned crop (96 px) and its status
const MAX_TILE_HEIGHT = 300;
const MIN_NODE_WIDTH = 400;
const COLORS = {
    face: "#ffb020", chosen: "#3dff6b", text: "#111", missing: "#ff5c5c", placeholder: "#444",
    region: "#2ee6ff", button: "#3a3f4b", active: "#2ee6ff", warning: "#ffb020",
};
const TOOLS = [
    { id: "box", label: "Box" }, { id: "paint", label: "Paint" }, { id: "erase", label: "Erase" },
    { id: "smaller", label: "−" }, { id: "larger", label: "+" }, { id: "clear", label: "Clear region" },
];

/** Bottom of the node's slots and visible widgets, in node-local coordinates. */
function contentBottom(node) {
    let bottom = 0;
    for (const widget of node.widgets ?? []) {
        if (widget.hidden || (node.isWidgetVisible && !node.isWidgetVisible(widget))) continue;
        const height = widget.computedHeight ?? widget.computeSize?.(node.size[0])?.[1] ?? LiteGraph.NODE_WIDGET_HEIGHT;
        bottom = Math.max(bottom, (widget.y ?? widget.last_y ?? 0) + height);
    }
    const plainInputs = (node.inputs ?? []).filter((input) => !input.widget).length;
    const rows = Math.max(plainInputs, node.outputs?.length ?? 0);
    return Math.max(bottom, rows * LiteGraph.NODE_SLOT_HEIGHT) + 4;
}

/** Where each photo goes: tiles in rows of up to 3, scaled to the width (and to maxTileHeight);
 * ``band`` pixels under each row hold the crop previews. */
export function layoutTiles(images, width, top, maxTileHeight = MAX_TILE_HEIGHT, band = 0) {
    const count = images.length;
    const cols = Math.max(1, Math.min(count, 3));
    const tileWidth = Math.max(1, (width - 2 * MARGIN - GAP * (cols - 1)) / cols);
    const scales = images.map((entry) => {
        const [w, h] = entry.image_size ?? [1, 1];
        return Math.max(0, Math.min(tileWidth / w, maxTileHeight / h));
    });
    const rowHeight = Math.max(1, ...images.map((entry, i) => (entry.image_size ?? [1, 1])[1] * scales[i]));
    const tiles = images.map((entry, i) => {
        const [w, h] = entry.image_size ?? [1, 1];
        const col = i % cols;
        const row = Math.floor(i / cols);
        const drawWidth = w * scales[i];
        const y = top + row * (rowHeight + LABEL_HEIGHT + band + GAP) + LABEL_HEIGHT;
        return {
            x: MARGIN + col * (tileWidth + GAP) + (tileWidth - drawWidth) / 2,
            y, w: drawWidth, h: h * scales[i], scale: scales[i], index: i,
            band: { x: MARGIN + col * (tileWidth + GAP), y: y + rowHeight + 4, w: tileWidth, h: band - 8 },
        };
    });
    const rows = Math.ceil(count / cols);
    return { tiles, height: rows * (rowHeight + LABEL_HEIGHT + band) + (rows - 1) * GAP + MARGIN };
}

/** The smallest face box containing the node-local point, or null. */
export function faceAt(hits, x, y) {
    let best = null;
    for (const hit of hits) {
        if (x < hit.x || y < hit.y || x > hit.x + hit.w || y > hit.y + hit.h) continue;
        if (!best || hit.w * hit.h < best.w * best.h) best = hit;
    }
    return best;
}

function inside(rect, x, y) {
    return rect && x >= rect.x && y >= rect.y && x <= rect.x + rect.w && y <= rect.y + rect.h;
}

function widgetNamed(node, name) {
    return node.widgets?.find((widget) => widget.name === name);
}

function setWidgetValue(node, name, value) {
    const widget = widgetNamed(node, name);
    if (!widget) return false;
    const old = widget.value;
    widget.value = value;
    widget.callback?.(widget.value, app.canvas, node, null, null);
    node.onWidgetChanged?.(name, widget.value, old, widget);
    return true;
}

/** The face index to highlight: the widget's, when its order is the one the boxes are in. */
function chosenIndex(node, data) {
    const order = widgetNamed(node, "face_choice")?.value;
    const index = widgetNamed(node, "face_index")?.value;
    return order === data.face_order && Number.isInteger(index) ? index : data.face_index;
}

function viewUrl(saved) {
    const query = new URLSearchParams({ filename: saved.filename, subfolder: saved.subfolder ?? "", type: saved.type });
    return api.apiURL(`/view?${query}${app.getPreviewFormatParam?.() ?? ""}${app.getRandParam?.() ?? ""}`);
}

function loadPreviews(node, images) {
    return images.map((entry) => {
        if (!entry.preview) return null;
        const img = new Image();
        img.onload = () => node.setDirtyCanvas(true, true);
        img.src = viewUrl(entry.preview);
        return img;
    });
}

// ------------------------------------------------------------------------------------------ state

/** Show ``data`` (a payload) on the node: photos, faces, regions. */
function showFaces(node, data, fromInput = false) {
    if (!data || !Array.isArray(data.images)) return;
    const old = node.pulidFacePicker;
    node.pulidFacePicker = {
        data, fromInput, previews: loadPreviews(node, data.images), hits: [], tiles: [], buttons: [],
        tool: old?.tool ?? "box", brush: old?.brush ?? 0.04, masks: {}, crops: {}, gesture: null,
        cropKeys: {},        // per image, the region its crop was asked for (see drawPicker)
    };
    if (!fromInput) {     // a run's result makes room; a photo merely wired in does not resize the node
        const width = Math.max(node.size[0], MIN_NODE_WIDTH);
        const top = contentBottom(node) + TOOLBAR_HEIGHT + GAP;
        const { height } = layoutTiles(data.images, width, top, MAX_TILE_HEIGHT, CROP_BAND);
        node.setSize([width, Math.max(node.size[1], top + height)]);
    }
    node.setDirtyCanvas(true, true);
}

function entries(node) {
    return parseRegions(widgetNamed(node, REGION_WIDGET)?.value);
}

/** The region shown for image ``i``: the one being dragged, else the widget's. */
function currentRegion(node, i) {
    const picker = node.pulidFacePicker;
    if (picker.gesture?.image === i && picker.gesture.region) return picker.gesture.region;
    return regionFor(entries(node), picker.data.images, i);
}

function writeRegion(node, i, region) {
    const picker = node.pulidFacePicker;
    setWidgetValue(node, REGION_WIDGET, withRegion(entries(node), picker.data.images, i, region));
    node.setDirtyCanvas(true, true);      // the next draw sees the new value and asks for the crop
}

/** The mask canvas of image ``i`` (loaded from the widget value once), or null. */
function maskOf(node, i) {
    const picker = node.pulidFacePicker;
    const region = currentRegion(node, i);
    const cached = picker.masks[i];
    if (!region?.mask) return null;
    if (cached?.url === region.mask) return cached.canvas;
    if (cached?.loading === region.mask) return cached.canvas ?? null;
    const size = picker.data.images[i].image_size;
    picker.masks[i] = { loading: region.mask, canvas: cached?.canvas ?? null };
    loadMask(region.mask, size).then((canvas) => {
        picker.masks[i] = { url: region.mask, canvas, veil: maskVeil(canvas) };
        node.setDirtyCanvas(true, true);
    }).catch(() => { picker.masks[i] = { url: region.mask, canvas: null }; });
    return null;
}

/** Ask the server for the aligned crop of image ``i``'s region (the newest request wins). */
async function refreshCrop(node, i) {
    const picker = node.pulidFacePicker;
    const entry = picker.data.images[i];
    const region = regionFor(entries(node), picker.data.images, i);
    const ticket = (picker.crops[i]?.ticket ?? 0) + 1;
    if (!region || !entry.source) {
        picker.crops[i] = { ticket };
        return;
    }
    picker.crops[i] = { ...picker.crops[i], ticket, pending: true };
    const body = { source: entry.source, image_size: entry.image_size, engine: picker.data.engine ?? null,
                   region: { box: region.box, ...(region.mask ? { mask: region.mask } : {}) } };
    let answer;
    try {
        const response = await api.fetchApi(PREVIEW_ROUTE, { method: "POST", body: JSON.stringify(body),
                                                             headers: { "Content-Type": "application/json" } });
        answer = await response.json();
    } catch (error) {
        answer = { error: String(error) };
    }
    if (node.pulidFacePicker !== picker || picker.crops[i]?.ticket !== ticket) return;   // a newer one runs
    const crop = { ticket, ...answer };
    if (answer.crop) {
        crop.img = new Image();
        crop.img.onload = () => node.setDirtyCanvas(true, true);
        crop.img.src = answer.crop;
    }
    picker.crops[i] = crop;
    node.setDirtyCanvas(true, true);
}

/** Before any run: the photo of a Load Image node feeding ``images``, with its hash from the server. */
function syncInputSource(node) {
    const picker = node.pulidFacePicker;
    if (picker && !picker.fromInput) return;
    const slot = node.findInputSlot?.("images") ?? -1;
    const source = slot >= 0 ? node.getInputNode?.(slot) : null;
    const value = source ? widgetNamed(source, "image")?.value : null;
    const ref = loadImageReference(value);
    const key = ref ? `${ref.type}/${ref.subfolder}/${ref.filename}` : null;
    if (!ref || node.pulidInputKey === key) return;
    node.pulidInputKey = key;
    api.fetchApi(`${IMAGE_ROUTE}?${new URLSearchParams(ref)}`).then((r) => (r.ok ? r.json() : null)).then((info) => {
        if (!info?.image_hash || node.pulidInputKey !== key) return;
        if (node.pulidFacePicker && !node.pulidFacePicker.fromInput) return;
        showFaces(node, {
            face_order: widgetNamed(node, "face_choice")?.value ?? "largest", face_index: 0,
            images: [{ name: "image 1", image_size: info.image_size, image_hash: info.image_hash, face_boxes: [],
                       face_found: null, preview: ref, source: ref, region: null }],
        }, true);
    }).catch(() => {});
}

// ------------------------------------------------------------------------------------------ drawing

function drawTag(ctx, text, x, y, color) {
    ctx.font = "bold 12px sans-serif";
    const width = ctx.measureText(text).width + 8;
    ctx.fillStyle = color;
    ctx.fillRect(x, y, width, 16);
    ctx.fillStyle = COLORS.text;
    ctx.fillText(text, x + 4, y + 12);
}

function drawToolbar(node, ctx, top) {
    const picker = node.pulidFacePicker;
    picker.buttons = [];
    let x = MARGIN;
    ctx.font = "12px sans-serif";
    for (const tool of TOOLS) {
        const w = ctx.measureText(tool.label).width + 14;
        const rect = { x, y: top, w, h: TOOLBAR_HEIGHT - 4, id: tool.id };
        const active = tool.id === picker.tool;
        ctx.fillStyle = active ? COLORS.active : COLORS.button;
        ctx.fillRect(rect.x, rect.y, rect.w, rect.h);
        ctx.fillStyle = active ? COLORS.text : LiteGraph.NODE_TEXT_COLOR;
        ctx.fillText(tool.label, x + 7, top + 13);
        picker.buttons.push(rect);
        x += w + 4;
    }
    if (picker.tool === "paint" || picker.tool === "erase") {
        ctx.fillStyle = LiteGraph.NODE_TEXT_COLOR;
        ctx.fillText(`brush ${Math.round(picker.brush * 100)}%`, x + 4, top + 13);
    }
}

function drawRegion(node, ctx, tile, region, i) {
    const picker = node.pulidFacePicker;
    const painting = picker.gesture?.image === i && picker.gesture.painting;
    const veil = painting || maskOf(node, i) ? picker.masks[i]?.veil ?? null : null;
    if (veil) ctx.drawImage(veil, tile.x, tile.y, tile.w, tile.h);
    const [x, y, w, h] = region.box;
    const r = { x: tile.x + x * tile.scale, y: tile.y + y * tile.scale, w: w * tile.scale, h: h * tile.scale };
    ctx.lineWidth = 2;
    ctx.strokeStyle = COLORS.region;
    ctx.strokeRect(r.x, r.y, r.w, r.h);
    ctx.fillStyle = COLORS.region;
    for (const [cx, cy] of [[r.x, r.y], [r.x + r.w, r.y], [r.x, r.y + r.h], [r.x + r.w, r.y + r.h]]) {
        ctx.fillRect(cx - HANDLE / 2, cy - HANDLE / 2, HANDLE, HANDLE);
    }
}

function drawBand(node, ctx, tile, region, i) {
    const picker = node.pulidFacePicker;
    const band = tile.band;
    const crop = picker.crops[i];
    const side = Math.min(band.h, 96);
    ctx.font = "12px sans-serif";
    const textX = band.x + side + 8;
    const lines = [];
    let color = LiteGraph.NODE_TEXT_COLOR;
    if (!region) {
        lines.push(picker.tool === "box" ? "Box: drag on the photo to draw the face region"
                                         : "draw a box first (Box tool), then paint or erase its mask");
        if (picker.data.images[i].face_found === false) color = COLORS.missing;
    } else {
        ctx.strokeStyle = COLORS.region;
        ctx.lineWidth = 1;
        ctx.strokeRect(band.x, band.y, side, side);
        if (crop?.img?.complete && crop.img.naturalWidth) ctx.drawImage(crop.img, band.x, band.y, side, side);
        if (crop?.error) {
            lines.push(crop.error);
            color = COLORS.missing;
        } else if (crop?.mode) {
            lines.push(`crop to encode: ${crop.message}`);
            if (crop.visible_share != null) lines.push(`mask leaves ${Math.round(crop.visible_share * 100)}% of the face`);
            if (crop.mode === "box-only") color = COLORS.warning;
        } else if (crop?.pending) {
            lines.push("aligning the face…");
        } else {
            lines.push("run the node once to preview the crop");
        }
    }
    ctx.fillStyle = color;
    const width = Math.max(40, band.x + band.w - textX);
    wrap(ctx, lines.join(" · "), width).slice(0, 5).forEach((line, n) => ctx.fillText(line, textX, band.y + 12 + n * 15));
}

function wrap(ctx, text, width) {
    const lines = [];
    let line = "";
    for (const word of text.split(" ")) {
        const next = line ? `${line} ${word}` : word;
        if (line && ctx.measureText(next).width > width) {
            lines.push(line);
            line = word;
        } else {
            line = next;
        }
    }
    if (line) lines.push(line);
    return lines;
}

function drawPicker(node, ctx) {
    const picker = node.pulidFacePicker;
    const top = contentBottom(node);
    const images = picker.data.images;
    const rows = Math.ceil(images.length / 3);
    const tilesTop = top + TOOLBAR_HEIGHT + GAP;
    const room = node.size[1] - tilesTop - MARGIN;
    if (room <= LABEL_HEIGHT + CROP_BAND + 8) {
        picker.hits = [];   // nothing drawn, nothing to click
        picker.tiles = [];
        picker.buttons = [];
        return;
    }
    const maxTileHeight = Math.min(MAX_TILE_HEIGHT,
                                   (room - rows * (LABEL_HEIGHT + CROP_BAND) - (rows - 1) * GAP) / rows);
    const { tiles } = layoutTiles(images, node.size[0], tilesTop, maxTileHeight, CROP_BAND);
    const chosen = chosenIndex(node, picker.data);
    const saved = entries(node);
    images.forEach((_, i) => {           // drawn, dragged, painted, cleared or typed: the crop follows
        const key = JSON.stringify(regionFor(saved, images, i));
        if (picker.cropKeys[i] !== key) {
            picker.cropKeys[i] = key;
            refreshCrop(node, i);
        }
    });
    const hits = [];
    ctx.save();
    ctx.textBaseline = "alphabetic";
    drawToolbar(node, ctx, top);
    images.forEach((entry, i) => {
        const tile = tiles[i];
        const region = currentRegion(node, i);
        const count = entry.face_boxes?.length ?? 0;
        ctx.font = "12px sans-serif";
        ctx.fillStyle = count || region ? LiteGraph.NODE_TEXT_COLOR : COLORS.missing;
        let label = count ? `${entry.name}: ${count} face${count > 1 ? "s" : ""}, click to choose` : `${entry.name}: no face`;
        if (entry.face_found === null) label = `${entry.name}: not run yet`;
        if (region) label = `${entry.name}: face region (drag it to move, a corner to resize)`;
        ctx.fillText(label, tile.x, tile.y - 4, Math.max(tile.w, 60));
        const img = picker.previews[i];
        if (img?.complete && img.naturalWidth) {
            ctx.drawImage(img, tile.x, tile.y, tile.w, tile.h);
        } else {
            ctx.fillStyle = COLORS.placeholder;
            ctx.fillRect(tile.x, tile.y, tile.w, tile.h);
        }
        if (!entry.region) {          // boxes from detection (a run with a region shows the region only)
            ctx.globalAlpha = region ? 0.35 : 1;
            (entry.face_boxes ?? []).forEach((box, index) => {
                const rect = {
                    x: tile.x + box[0] * tile.scale, y: tile.y + box[1] * tile.scale,
                    w: (box[2] - box[0]) * tile.scale, h: (box[3] - box[1]) * tile.scale, index, image: i,
                };
                const isChosen = index === chosen;
                ctx.lineWidth = isChosen ? 3 : 1.5;
                ctx.strokeStyle = isChosen ? COLORS.chosen : COLORS.face;
                ctx.strokeRect(rect.x, rect.y, rect.w, rect.h);
                drawTag(ctx, String(index), rect.x, Math.max(tile.y, rect.y - 16), isChosen ? COLORS.chosen : COLORS.face);
                if (!region) hits.push(rect);
            });
            ctx.globalAlpha = 1;
        }
        if (region && Array.isArray(region.box)) drawRegion(node, ctx, tile, region, i);
        drawBand(node, ctx, tile, region, i);
    });
    ctx.restore();
    picker.hits = hits;
    picker.tiles = tiles;
}

// ------------------------------------------------------------------------------------------ editing

function toImage(tile, x, y) {
    return [(x - tile.x) / tile.scale, (y - tile.y) / tile.scale];
}

function toolAction(node, id) {
    const picker = node.pulidFacePicker;
    if (id === "smaller") picker.brush = Math.max(0.01, picker.brush / 1.5);
    else if (id === "larger") picker.brush = Math.min(0.3, picker.brush * 1.5);
    else if (id === "clear") picker.data.images.forEach((_, i) => { if (currentRegion(node, i)) writeRegion(node, i, null); });
    else picker.tool = id;
    node.setDirtyCanvas(true, true);
}

/** Start a drag on image ``tile.index`` at node-local ``pos``; returns the gesture or null. */
function startGesture(node, tile, pos) {
    const picker = node.pulidFacePicker;
    const i = tile.index;
    const size = picker.data.images[i].image_size;
    const point = toImage(tile, pos[0], pos[1]);
    const region = regionFor(entries(node), picker.data.images, i);
    if (picker.tool === "box") {
        const grabbed = grab(region?.box, point, HANDLE / tile.scale);
        return { image: i, tile, size, start: point, grabbed: grabbed ?? "new", base: region,
                 region: region ? { ...region } : null, moved: false };
    }
    if (!region) return { image: i, tile, size, start: point, note: true, moved: false };
    let mask = maskOf(node, i);
    if (!mask) mask = newMask(size, picker.tool === "erase");   // erasing starts from "all face"
    picker.masks[i] = { url: null, canvas: mask, veil: null };
    const radius = picker.brush * Math.max(size[0], size[1]);
    strokeMask(mask, point, point, radius, size, picker.tool === "erase");
    picker.masks[i].veil = maskVeil(mask);
    return { image: i, tile, size, start: point, last: point, mask, radius, base: region,
             region: { ...region }, moved: true, painting: true };
}

function moveGesture(node, gesture, pos) {
    const point = toImage(gesture.tile, pos[0], pos[1]);
    const dx = point[0] - gesture.start[0], dy = point[1] - gesture.start[1];
    if (Math.hypot(dx, dy) * gesture.tile.scale > 3) gesture.moved = true;
    if (gesture.note || !gesture.moved) return;
    if (gesture.painting) {
        strokeMask(gesture.mask, gesture.last, point, gesture.radius, gesture.size, node.pulidFacePicker.tool === "erase");
        gesture.last = point;
        node.pulidFacePicker.masks[gesture.image].veil = maskVeil(gesture.mask);
    } else if (gesture.grabbed === "new") {
        gesture.region = { ...(gesture.base ?? {}), box: boxFromCorners(gesture.start, point, gesture.size) };
    } else {
        gesture.region = { ...gesture.base, box: dragBox(gesture.base.box, gesture.grabbed, [dx, dy], gesture.size) };
    }
    node.setDirtyCanvas(true, false);
}

/** Commit the gesture into the widget value (safe to call twice). */
function endGesture(node, gesture) {
    const picker = node.pulidFacePicker;
    if (!picker || picker.gesture !== gesture) return;
    picker.gesture = null;
    if (!gesture.moved || gesture.note) return;
    if (gesture.painting) {
        const url = gesture.mask.toDataURL("image/png");
        picker.masks[gesture.image] = { url, canvas: gesture.mask, veil: maskVeil(gesture.mask) };
        writeRegion(node, gesture.image, { ...gesture.base, mask: url });
    } else if (boxIsUsable(gesture.region?.box)) {
        writeRegion(node, gesture.image, gesture.region);
    }
    node.setDirtyCanvas(true, true);
}

app.registerExtension({
    name: "pulid_flux_studio.FacePicker",

    setup() {
        // A run without any face: the node sends its photos before failing, so the region can be drawn.
        api.addEventListener(EVENT, (event) => {
            const detail = event.detail ?? {};
            const node = app.graph?.getNodeById(detail.node) ?? app.graph?.getNodeById(Number(detail.node));
            if (node?.type === NODE_TYPE) showFaces(node, detail[PAYLOAD_KEY]);
        });
    },

    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData?.name !== NODE_TYPE) return;

        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (output) {
            const result = onExecuted?.apply(this, arguments);
            showFaces(this, output?.[PAYLOAD_KEY]?.[0]);
            return result;
        };

        const onDrawForeground = nodeType.prototype.onDrawForeground;
        nodeType.prototype.onDrawForeground = function (ctx) {
            const result = onDrawForeground?.apply(this, arguments);
            if (!this.flags?.collapsed) {
                syncInputSource(this);
                if (this.pulidFacePicker) drawPicker(this, ctx);
            }
            return result;
        };

        const onMouseDown = nodeType.prototype.onMouseDown;
        nodeType.prototype.onMouseDown = function (event, pos, canvas) {
            const handled = onMouseDown?.apply(this, arguments);
            const picker = this.pulidFacePicker;
            if (handled || !picker || this.flags?.collapsed || !pos) return handled;
            const button = picker.buttons.find((b) => inside(b, pos[0], pos[1]));
            if (button) {
                toolAction(this, button.id);
                return true;
            }
            const hit = faceAt(picker.hits, pos[0], pos[1]);
            if (hit && picker.tool === "box") {
                setWidgetValue(this, "face_choice", picker.data.face_order);
                setWidgetValue(this, "face_index", hit.index);
                this.setDirtyCanvas(true, true);
                return true;
            }
            const tile = picker.tiles.find((t) => inside(t, pos[0], pos[1]));
            const pointer = canvas?.pointer ?? app.canvas?.pointer;
            if (!tile || !pointer) return handled;
            const gesture = startGesture(this, tile, pos);
            picker.gesture = gesture;
            const node = this;
            const local = (e) => [e.canvasX - node.pos[0], e.canvasY - node.pos[1]];
            pointer.onDrag = (e) => { if (picker.gesture === gesture) moveGesture(node, gesture, local(e)); };
            pointer.onDragEnd = (e) => {
                if (picker.gesture === gesture) moveGesture(node, gesture, local(e));
                endGesture(node, gesture);
            };
            pointer.finally = () => endGesture(node, gesture);
            this.setDirtyCanvas(true, true);
            return true;
        };
    },
});
