# Copyright (c) Meta Platforms, Inc. and affiliates.
#
# This source code is licensed under the Apache License, Version 2.0
# found in the LICENSE file in the root directory of this source tree.

# The backbones of facebookresearch/dinov2's hubconf.py (commit b8931f7); its classifier, depth and dino.txt heads,
# which need more files, are left out of this test copy.
from dinov2.hub.backbones import dinov2_vitb14, dinov2_vitg14, dinov2_vitl14, dinov2_vits14

dependencies = ["torch"]
