"""The learning layer: atoms and the decoders that fit them to a sketch
(CL-OMPR, batched CL-OMPR, hierarchical splitting, merge moves), the
frequency scale of mixtures, and the scikit-learn estimators."""
