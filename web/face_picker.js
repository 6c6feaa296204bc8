// Face picker for "Encode identity (PuLID-Flux Studio)".
//
// After a run, the node's UI payload `pulid_studio_faces` lists, per reference image, every
// detected face box (in the order face_index counts in) and a small copy of the photo in ComfyUI's
// temp folder. The node then shows each photo with its faces numbered, the chosen one highlighted;
// clicking a face sets `face_index` (and `face_choice` to the order the numbers were made in).
//
// Prototype callbacks are chained, never replaced: other extensions hooking the same node keep
// working. Drawing uses the classic LiteGraph canvas hooks (the default "Classic" node design).

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPE = "PulidStudioEncodeIdentity";
const PAYLOAD_KEY = "pulid_studio_faces";
const MARGIN = 10;
const GAP = 8;
const LABEL_HEIGHT = 16;
const MAX_TILE_HEIGHT = 300;
const MIN_NODE_WIDTH = 340;
const COLORS = { face: "#ffb020", chosen: "#3dff6b", text: "#111", missing: "#ff5c5c", placeholder: "#444" };

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

/** Where each photo goes: tiles in rows of up to 3, scaled to the width (and to maxTileHeight). */
export function layoutTiles(images, width, top, maxTileHeight = MAX_TILE_HEIGHT) {
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
        return {
            x: MARGIN + col * (tileWidth + GAP) + (tileWidth - drawWidth) / 2,
            y: top + row * (rowHeight + LABEL_HEIGHT + GAP) + LABEL_HEIGHT,
            w: drawWidth,
            h: h * scales[i],
            scale: scales[i],
        };
    });
    const rows = Math.ceil(count / cols);
    return { tiles, height: rows * (rowHeight + LABEL_HEIGHT) + (rows - 1) * GAP + MARGIN };
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

function previewUrl(saved) {
    const query = new URLSearchParams({ filename: saved.filename, subfolder: saved.subfolder ?? "", type: saved.type });
    return api.apiURL(`/view?${query}${app.getPreviewFormatParam?.() ?? ""}${app.getRandParam?.() ?? ""}`);
}

function loadPreviews(node, images) {
    return images.map((entry) => {
        if (!entry.preview) return null;
        const img = new Image();
        img.onload = () => node.setDirtyCanvas(true, true);
        img.src = previewUrl(entry.preview);
        return img;
    });
}

function drawTag(ctx, text, x, y, color) {
    ctx.font = "bold 12px sans-serif";
    const width = ctx.measureText(text).width + 8;
    ctx.fillStyle = color;
    ctx.fillRect(x, y, width, 16);
    ctx.fillStyle = COLORS.text;
    ctx.fillText(text, x + 4, y + 12);
}

function drawPicker(node, ctx) {
    const picker = node.pulidFacePicker;
    const top = contentBottom(node);
    const room = node.size[1] - top - MARGIN;
    if (room <= LABEL_HEIGHT + 8) {
        picker.hits = [];   // nothing drawn, nothing to click
        return;
    }
    const images = picker.data.images;
    const rows = Math.ceil(images.length / 3);
    const maxTileHeight = Math.min(MAX_TILE_HEIGHT, (room - rows * LABEL_HEIGHT - (rows - 1) * GAP) / rows);
    const { tiles } = layoutTiles(images, node.size[0], top, maxTileHeight);
    const chosen = chosenIndex(node, picker.data);
    const hits = [];
    ctx.save();
    ctx.textBaseline = "alphabetic";
    images.forEach((entry, i) => {
        const tile = tiles[i];
        const count = entry.face_boxes?.length ?? 0;
        ctx.font = "12px sans-serif";
        ctx.fillStyle = count ? LiteGraph.NODE_TEXT_COLOR : COLORS.missing;
        const label = count ? `${entry.name}: ${count} face${count > 1 ? "s" : ""}, click to choose` : `${entry.name}: no face`;
        ctx.fillText(label, tile.x, tile.y - 4, Math.max(tile.w, 60));
        const img = picker.previews[i];
        if (img?.complete && img.naturalWidth) {
            ctx.drawImage(img, tile.x, tile.y, tile.w, tile.h);
        } else {
            ctx.fillStyle = COLORS.placeholder;
            ctx.fillRect(tile.x, tile.y, tile.w, tile.h);
        }
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
            hits.push(rect);
        });
    });
    ctx.restore();
    picker.hits = hits;
}

app.registerExtension({
    name: "pulid_flux_studio.FacePicker",

    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData?.name !== NODE_TYPE) return;

        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (output) {
            const result = onExecuted?.apply(this, arguments);
            const data = output?.[PAYLOAD_KEY]?.[0];
            if (data && Array.isArray(data.images)) {
                this.pulidFacePicker = { data, previews: loadPreviews(this, data.images), hits: [] };
                const width = Math.max(this.size[0], MIN_NODE_WIDTH);
                const top = contentBottom(this);
                const { height } = layoutTiles(data.images, width, top);
                this.setSize([width, Math.max(this.size[1], top + height)]);
                this.setDirtyCanvas(true, true);
            }
            return result;
        };

        const onDrawForeground = nodeType.prototype.onDrawForeground;
        nodeType.prototype.onDrawForeground = function (ctx) {
            const result = onDrawForeground?.apply(this, arguments);
            if (this.pulidFacePicker && !this.flags?.collapsed) drawPicker(this, ctx);
            return result;
        };

        const onMouseDown = nodeType.prototype.onMouseDown;
        nodeType.prototype.onMouseDown = function (event, pos) {
            const handled = onMouseDown?.apply(this, arguments);
            if (handled || !this.pulidFacePicker || this.flags?.collapsed || !pos) return handled;
            const hit = faceAt(this.pulidFacePicker.hits, pos[0], pos[1]);
            if (!hit) return handled;
            setWidgetValue(this, "face_choice", this.pulidFacePicker.data.face_order);
            setWidgetValue(this, "face_index", hit.index);
            this.setDirtyCanvas(true, true);
            return true;
        };
    },
});
