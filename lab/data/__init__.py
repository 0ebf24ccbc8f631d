"""CIFAR-10 in (a folder, the official archive or a Keras download), tasks and splits, tf.data out."""
