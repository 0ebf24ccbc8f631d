"""Every control and figure explained in plain words, in one place: pages pass these as `help=`.

Each text starts with a sentence a 15-year-old understands, then names the exact term
(in brackets, or after "This is"), so a student learns the word along with the idea.
Pages look texts up by the name of the setting or the figure (`HELP["epochs"]`), never
write their own, so the same control reads the same on every page.
"""

from __future__ import annotations

from lab.config import ONE_VS_REST, REPORT_BINARY_TASK

# ---------------------------------------------------------------- the Train page's settings

SETTINGS = {
    "task": "What the network learns to answer: which of the 10 classes a picture shows, or a simpler two-way question (the task).",
    "class_a": "The network learns to tell this class from the second one; it sees only pictures of these two classes.",
    "class_b": "The network learns to tell this class from the first one; it sees only pictures of these two classes.",
    "one_class": "The network learns to tell this class from the nine others, which together hold 9 pictures in 10 "
    f"(a one-vs-rest task). The lab report's binary run was {REPORT_BINARY_TASK.removeprefix(ONE_VS_REST)} against the rest.",
    "subset": "How many of the 50,000 training pictures to use; 0 uses them all. Fewer pictures train faster but learn "
    "less. Every class keeps its share (a stratified subset), and the validation pictures come out of these.",
    "val_fraction": "Part of the training pictures kept aside and never learned from, to check the network on pictures "
    "it has not seen while it trains, so you can spot when it starts memorising (the validation split; memorising is "
    "over-fitting).",
    "seed": "A starting number for everything left to chance: the same seed picks the same pictures, the same split and "
    "the same starting weights, so a run can be repeated exactly (the random seed).",
    "preset": "A ready-made recipe: a network and settings that work well together. Change the network and it becomes 'custom'.",
    "backbone": "The main part of the network, which turns a picture into a list of features (edges, textures, parts of "
    "objects). seed-cnn, fast-cnn and vit-tiny are small networks that start from nothing; vgg16, resnet50, mobilenetv2 "
    "and efficientnetb0 are big networks designed for ImageNet's photos (the backbone).",
    "input_size": "How large each 32 x 32 picture is made before the network sees it. Networks built for ImageNet see "
    "more in bigger pictures, but each step gets slower (the images are upscaled inside the model).",
    "weights": "Where the backbone starts. imagenet: start from a network already trained on ImageNet's 1.2 million "
    "photos, so it already knows edges, textures and shapes (transfer learning). none: start from random numbers and "
    "learn everything from these pictures. Only the big pretrained backbones use this.",
    "head": "The small part on top of the backbone that turns its features into a score for each class. linear: one "
    "layer. dense256: a hidden layer of 256 units, with dropout, before it (the classification head). Only the big "
    "pretrained backbones use this; the small networks bring their own.",
    "dropout": "While training, switch off this share of the head's units at random, so the network cannot lean on any "
    "single one (dropout).",
    "width": "How many filters each layer has, relative to the speed record's network: wider learns more but is slower. "
    "1.0 is airbench94 itself (best on a GPU); 0.75 is the fast-cnn preset; 0.5, the default for a custom network, "
    "trains about twice as fast as 0.75, and 0.25 about four times (the width multiplier).",
    "freeze_all": "Keep the backbone exactly as it was trained on ImageNet and train only the small head on top: much "
    "faster, and safe with few pictures (a frozen backbone). Turn it off to let some backbone layers learn too "
    "(fine-tuning).",
    "freeze_depth": "How many of the backbone's layers, counted from the picture's side, stay as they are; the layers "
    "above them keep learning. 0 = every layer learns (fine-tuning the whole network).",
    "epochs": "How many times the network looks at every training picture. More epochs: more learning and more time, "
    "and after a while it starts memorising instead (one pass over all the pictures is one epoch).",
    "batch_size": "How many pictures the network looks at before it adjusts itself once (the batch size). Bigger "
    "batches make fewer, steadier adjustments per epoch and need more memory.",
    "optimizer": "The rule that decides how the network changes its weights after each batch (the optimizer). "
    "adam / adamw: a step per weight, scaled by how large its gradients have been (adamw adds weight decay). "
    "sgd: a step along the gradient, with momentum. muon: sgd, except that each convolution's filters are kept at a "
    "fixed size and their step is evened out so that every direction it points to moves by the same amount; that step "
    "follows the schedule but not the learning rate, which sets the other weights' steps. The fast-cnn recipes use it "
    "(the same accuracy in fewer epochs); not for fine-tuning pretrained filters.",
    "learning_rate": "How big a change the network makes each time it adjusts itself. Too small and it learns slowly; "
    "too big and it overshoots and gets worse (the learning rate).",
    "lr_schedule": "Whether that step size stays the same or shrinks as training goes on (the learning-rate schedule). "
    "constant: always the same. cosine: shrinks smoothly to 0, slowly at first and at the end. linear: shrinks at an "
    "even pace to 0. onecycle: grows from a tenth of the rate during the first fifth of training, then shrinks at an "
    "even pace to 0. plateau: halves whenever the validation loss stops getting better.",
    "augment": "Show each picture slightly changed every time (sometimes mirrored, moved by up to 2 pixels), so the "
    "network learns the object rather than the exact pixels (data augmentation).",
    "fine_labels": "While training, a second output also names each picture's CIFAR-10 class: a harder lesson that "
    "teaches the network better features for the two-way question. The loss curve then adds the 10-class loss; the "
    "saved model answers the two-way question only (auxiliary fine labels).",
    "weight_decay": "At every step, gently pull each weight towards zero, so the network prefers simple answers and "
    "memorises less (weight decay, a kind of regularisation).",
    "label_smoothing": "Teach the network not to be completely sure: the right answer's target becomes, say, 0.9 "
    "instead of 1, and the rest is shared among the other classes (label smoothing).",
    "tta": "When testing, the network also looks at the mirror image and copies moved by 1 pixel, and averages its "
    "answers (test-time augmentation).",
    "ema": "Test an average of the network's weights over its last steps, which is usually steadier than the very last "
    "weights (an exponential moving average of the weights).",
    "keep_best": "At the end, go back to the epoch that scored best on the validation pictures, not the last one "
    "(keeping the best epoch, as early stopping does).",
    "precision": "How many digits each number in the network keeps while it computes: fewer digits are faster and "
    "nearly as accurate (the number precision). auto: mixed float16 on a GPU (its tensor cores run it several times "
    "faster); mixed bfloat16 for seed-cnn and fast-cnn on a CPU with bfloat16 instructions (AVX512-BF16 or AMX); "
    "float32 otherwise. The weights always stay float32.",
    "lr_finder": "Tries many learning rates on 2,000 pictures in a short sweep and shows which one makes the loss fall "
    "fastest, to pick a good starting value (a learning-rate range test).",
    "start": "Sends these settings to a worker that trains the network in the background: you can change page or close "
    "the tab and it keeps going.",
    "measure": "Times one training step of this network on this server, then multiplies it out to the whole run (takes 5 to 15 seconds).",
    "lr_find": "Runs the learning-rate sweep now, here on this server.",
    "lr_use": "Puts the suggested learning rate into the Learning rate box.",
}
# A pretrained-only setting, greyed out for a network that starts from nothing, says why.
ONLY_PRETRAINED = "Only the big pretrained backbones (vgg16, resnet50, mobilenetv2, efficientnetb0) use this."

# ---------------------------------------------------------------- a run's figures

METRICS = {
    "accuracy": "Out of every 100 test pictures (never used for training), how many the model got right (the test accuracy).",
    "precision_macro": "When the model names a class, how often it is right, worked out for each class and then "
    "averaged so every class counts the same (macro-averaged precision).",
    "recall_macro": "Of each class's pictures, how many the model finds, worked out for each class and then averaged "
    "so every class counts the same (macro-averaged recall).",
    "f1_macro": "Precision and recall in one number: it is high only when both are high (the F1 score, their harmonic "
    "mean, macro-averaged over the classes).",
    "total_params": "How many numbers the network holds and tunes while it learns (its parameters).",
    "train_seconds": "How long the training itself took on this server, from the first step to the last epoch "
    "(loading the data and testing are not counted).",
}

# ---------------------------------------------------------------- keys to the pictures

# The key to every learning-curve chart (lab/report/charts.learning_curves_chart): the dashes carry the split.
CURVES_KEY = (
    "Solid line: the training pictures; dashed line: the validation pictures, kept aside. "
    "A growing gap between them means the network is memorising its training pictures (over-fitting)."
)
# One run's curves (the Train page): colour and dashes both carry the split, so the key names both.
ONE_RUN_CURVES_KEY = (
    "Blue solid line: the training pictures; orange dashed line: the validation pictures, kept aside. "
    "A growing gap between them means the network is memorising its training pictures (over-fitting)."
)
BATCH_CURVE_KEY = (
    "Each point is the training loss so far in that epoch, a few times a second: lower means fewer mistakes. "
    "It jumps at the start of each epoch, where the average starts again."
)
