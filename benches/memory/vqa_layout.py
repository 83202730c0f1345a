"""A small outside data set in the VQA v2 download layout, for issue 32's memory benchmark.

Usage: python3 benches/memory/vqa_layout.py OUT_DIR   (needs Pillow)

Writes OUT_DIR/{train2014,val2014}/COCO_*_<id>.jpg (1,000 and 250 64x64 JPEGs of one to four
coloured circles, squares and triangles) and the four v2 JSON files, ten questions per image
(counts, yes/no on shapes and colours, colour and shape of the first object, ten human answers
each). Convert it with `mm data convert vqa --raw OUT_DIR --out e224.h5 --image-size 224`.
"""
import json, os, random, sys
from PIL import Image, ImageDraw
root = sys.argv[1]; rng = random.Random(7)
COLORS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220), "yellow": (230, 210, 30), "white": (240, 240, 240)}
SHAPES = ["circle", "square", "triangle"]
qid = 1
for split, n, base in [("train", 1000, 1), ("val", 250, 500000)]:
    os.makedirs(f"{root}/{split}2014", exist_ok=True)
    qs, anns = [], []
    for i in range(n):
        img_id = base + i
        im = Image.new("RGB", (64, 64), (rng.randint(0, 80),) * 3); d = ImageDraw.Draw(im)
        objs = []
        for _ in range(rng.randint(1, 4)):
            c = rng.choice(list(COLORS)); s = rng.choice(SHAPES); x, y = rng.randint(2, 44), rng.randint(2, 44); r = rng.randint(8, 18)
            box = [x, y, x + r, y + r]
            if s == "circle": d.ellipse(box, fill=COLORS[c])
            elif s == "square": d.rectangle(box, fill=COLORS[c])
            else: d.polygon([(x, y + r), (x + r, y + r), (x + r // 2, y)], fill=COLORS[c])
            objs.append((c, s))
        im.save(f"{root}/{split}2014/COCO_{split}2014_{img_id:012}.jpg", quality=90)
        cands = []
        cands.append(("how many shapes are there?", str(len(objs)), "number", "how many"))
        for s in SHAPES:
            cands.append((f"is there a {s}?", "yes" if any(o[1] == s for o in objs) else "no", "yes/no", "is there a"))
            cands.append((f"how many {s}s are there?", str(sum(o[1] == s for o in objs)), "number", "how many"))
        for c in COLORS:
            cands.append((f"is there a {c} shape?", "yes" if any(o[0] == c for o in objs) else "no", "yes/no", "is there a"))
        cands.append(("what color is the first shape?", objs[0][0], "other", "what color is the"))
        cands.append(("what shape is the first object?", objs[0][1], "other", "what shape is the"))
        rng.shuffle(cands)
        for q, a, at, qt in cands[:10]:
            qs.append({"image_id": img_id, "question": q, "question_id": qid})
            answers = [{"answer": a if h < 9 or rng.random() < 0.5 else "yes", "answer_confidence": "yes", "answer_id": h + 1} for h in range(10)]
            anns.append({"question_id": qid, "image_id": img_id, "answers": answers, "multiple_choice_answer": a, "answer_type": at, "question_type": qt})
            qid += 1
    json.dump({"questions": qs}, open(f"{root}/v2_OpenEnded_mscoco_{split}2014_questions.json", "w"))
    json.dump({"annotations": anns}, open(f"{root}/v2_mscoco_{split}2014_annotations.json", "w"))
print("questions", qid - 1)
