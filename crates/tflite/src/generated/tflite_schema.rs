pub use root::*;

const _: () = ::planus::check_version_compatibility("planus-1.3.0");

/// The root namespace
///
/// Generated from these locations:
/// * File `schema/tflite_subset.fbs`
#[no_implicit_prelude]
#[allow(clippy::needless_lifetimes)]
mod root {
    /// The namespace `tflite`
    ///
    /// Generated from these locations:
    /// * File `schema/tflite_subset.fbs`
    pub mod tflite {
        ///  Tensor element types, as TensorFlow Lite names them.
        ///
        /// Generated from these locations:
        /// * Enum `TensorType` in the file `schema/tflite_subset.fbs:17`
        #[derive(
            Copy,
            Clone,
            Debug,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        #[repr(i8)]
        pub enum TensorType {
            /// The variant `FLOAT32` in the enum `TensorType`
            Float32 = 0,

            /// The variant `FLOAT16` in the enum `TensorType`
            Float16 = 1,

            /// The variant `INT32` in the enum `TensorType`
            Int32 = 2,

            /// The variant `UINT8` in the enum `TensorType`
            Uint8 = 3,

            /// The variant `INT64` in the enum `TensorType`
            Int64 = 4,

            /// The variant `STRING` in the enum `TensorType`
            String = 5,

            /// The variant `BOOL` in the enum `TensorType`
            Bool = 6,

            /// The variant `INT16` in the enum `TensorType`
            Int16 = 7,

            /// The variant `COMPLEX64` in the enum `TensorType`
            Complex64 = 8,

            /// The variant `INT8` in the enum `TensorType`
            Int8 = 9,

            /// The variant `FLOAT64` in the enum `TensorType`
            Float64 = 10,

            /// The variant `COMPLEX128` in the enum `TensorType`
            Complex128 = 11,

            /// The variant `UINT64` in the enum `TensorType`
            Uint64 = 12,

            /// The variant `RESOURCE` in the enum `TensorType`
            Resource = 13,

            /// The variant `VARIANT` in the enum `TensorType`
            Variant = 14,

            /// The variant `UINT32` in the enum `TensorType`
            Uint32 = 15,

            /// The variant `UINT16` in the enum `TensorType`
            Uint16 = 16,

            /// The variant `INT4` in the enum `TensorType`
            Int4 = 17,

            /// The variant `BFLOAT16` in the enum `TensorType`
            Bfloat16 = 18,

            /// The variant `INT2` in the enum `TensorType`
            Int2 = 19,

            /// The variant `UINT4` in the enum `TensorType`
            Uint4 = 20,
        }

        impl TensorType {
            /// Array containing all valid variants of TensorType
            pub const ENUM_VALUES: [Self; 21] = [
                Self::Float32,
                Self::Float16,
                Self::Int32,
                Self::Uint8,
                Self::Int64,
                Self::String,
                Self::Bool,
                Self::Int16,
                Self::Complex64,
                Self::Int8,
                Self::Float64,
                Self::Complex128,
                Self::Uint64,
                Self::Resource,
                Self::Variant,
                Self::Uint32,
                Self::Uint16,
                Self::Int4,
                Self::Bfloat16,
                Self::Int2,
                Self::Uint4,
            ];
        }

        impl ::core::convert::TryFrom<i8> for TensorType {
            type Error = ::planus::errors::UnknownEnumTagKind;
            #[inline]
            fn try_from(
                value: i8,
            ) -> ::core::result::Result<Self, ::planus::errors::UnknownEnumTagKind> {
                #[allow(clippy::match_single_binding)]
                match value {
                    0 => ::core::result::Result::Ok(TensorType::Float32),
                    1 => ::core::result::Result::Ok(TensorType::Float16),
                    2 => ::core::result::Result::Ok(TensorType::Int32),
                    3 => ::core::result::Result::Ok(TensorType::Uint8),
                    4 => ::core::result::Result::Ok(TensorType::Int64),
                    5 => ::core::result::Result::Ok(TensorType::String),
                    6 => ::core::result::Result::Ok(TensorType::Bool),
                    7 => ::core::result::Result::Ok(TensorType::Int16),
                    8 => ::core::result::Result::Ok(TensorType::Complex64),
                    9 => ::core::result::Result::Ok(TensorType::Int8),
                    10 => ::core::result::Result::Ok(TensorType::Float64),
                    11 => ::core::result::Result::Ok(TensorType::Complex128),
                    12 => ::core::result::Result::Ok(TensorType::Uint64),
                    13 => ::core::result::Result::Ok(TensorType::Resource),
                    14 => ::core::result::Result::Ok(TensorType::Variant),
                    15 => ::core::result::Result::Ok(TensorType::Uint32),
                    16 => ::core::result::Result::Ok(TensorType::Uint16),
                    17 => ::core::result::Result::Ok(TensorType::Int4),
                    18 => ::core::result::Result::Ok(TensorType::Bfloat16),
                    19 => ::core::result::Result::Ok(TensorType::Int2),
                    20 => ::core::result::Result::Ok(TensorType::Uint4),

                    _ => ::core::result::Result::Err(::planus::errors::UnknownEnumTagKind {
                        tag: value as i128,
                    }),
                }
            }
        }

        impl ::core::convert::From<TensorType> for i8 {
            #[inline]
            fn from(value: TensorType) -> Self {
                value as i8
            }
        }

        /// # Safety
        /// The Planus compiler correctly calculates `ALIGNMENT` and `SIZE`.
        unsafe impl ::planus::Primitive for TensorType {
            const ALIGNMENT: usize = 1;
            const SIZE: usize = 1;
        }

        impl ::planus::WriteAsPrimitive<TensorType> for TensorType {
            #[inline]
            fn write<const N: usize>(&self, cursor: ::planus::Cursor<'_, N>, buffer_position: u32) {
                (*self as i8).write(cursor, buffer_position);
            }
        }

        impl ::planus::WriteAs<TensorType> for TensorType {
            type Prepared = Self;

            #[inline]
            fn prepare(&self, _builder: &mut ::planus::Builder) -> TensorType {
                *self
            }
        }

        impl ::planus::WriteAsDefault<TensorType, TensorType> for TensorType {
            type Prepared = Self;

            #[inline]
            fn prepare(
                &self,
                _builder: &mut ::planus::Builder,
                default: &TensorType,
            ) -> ::core::option::Option<TensorType> {
                if self == default {
                    ::core::option::Option::None
                } else {
                    ::core::option::Option::Some(*self)
                }
            }
        }

        impl ::planus::WriteAsOptional<TensorType> for TensorType {
            type Prepared = Self;

            #[inline]
            fn prepare(
                &self,
                _builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<TensorType> {
                ::core::option::Option::Some(*self)
            }
        }

        impl<'buf> ::planus::TableRead<'buf> for TensorType {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'buf>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                let n: i8 = ::planus::TableRead::from_buffer(buffer, offset)?;
                ::core::result::Result::Ok(::core::convert::TryInto::try_into(n)?)
            }
        }

        impl<'buf> ::planus::VectorReadInner<'buf> for TensorType {
            type Error = ::planus::errors::UnknownEnumTag;
            const STRIDE: usize = 1;
            #[inline]
            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'buf>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::UnknownEnumTag> {
                let value = unsafe { *buffer.buffer.get_unchecked(offset) as i8 };
                let value: ::core::result::Result<Self, _> =
                    ::core::convert::TryInto::try_into(value);
                value.map_err(|error_kind| {
                    error_kind.with_error_location(
                        "TensorType",
                        "VectorRead::from_buffer",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<TensorType> for TensorType {
            const STRIDE: usize = 1;

            type Value = Self;

            #[inline]
            fn prepare(&self, _builder: &mut ::planus::Builder) -> Self {
                *self
            }

            #[inline]
            unsafe fn write_values(
                values: &[Self],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 1];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - i as u32,
                    );
                }
            }
        }

        ///  Builtin operator codes, as TensorFlow Lite names them.
        ///
        /// Generated from these locations:
        /// * Enum `BuiltinOperator` in the file `schema/tflite_subset.fbs:42`
        #[derive(
            Copy,
            Clone,
            Debug,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        #[repr(i32)]
        pub enum BuiltinOperator {
            /// The variant `ADD` in the enum `BuiltinOperator`
            Add = 0,

            /// The variant `AVERAGE_POOL_2D` in the enum `BuiltinOperator`
            AveragePool2d = 1,

            /// The variant `CONCATENATION` in the enum `BuiltinOperator`
            Concatenation = 2,

            /// The variant `CONV_2D` in the enum `BuiltinOperator`
            Conv2d = 3,

            /// The variant `DEPTHWISE_CONV_2D` in the enum `BuiltinOperator`
            DepthwiseConv2d = 4,

            /// The variant `DEPTH_TO_SPACE` in the enum `BuiltinOperator`
            DepthToSpace = 5,

            /// The variant `DEQUANTIZE` in the enum `BuiltinOperator`
            Dequantize = 6,

            /// The variant `EMBEDDING_LOOKUP` in the enum `BuiltinOperator`
            EmbeddingLookup = 7,

            /// The variant `FLOOR` in the enum `BuiltinOperator`
            Floor = 8,

            /// The variant `FULLY_CONNECTED` in the enum `BuiltinOperator`
            FullyConnected = 9,

            /// The variant `HASHTABLE_LOOKUP` in the enum `BuiltinOperator`
            HashtableLookup = 10,

            /// The variant `L2_NORMALIZATION` in the enum `BuiltinOperator`
            L2Normalization = 11,

            /// The variant `L2_POOL_2D` in the enum `BuiltinOperator`
            L2Pool2d = 12,

            /// The variant `LOCAL_RESPONSE_NORMALIZATION` in the enum `BuiltinOperator`
            LocalResponseNormalization = 13,

            /// The variant `LOGISTIC` in the enum `BuiltinOperator`
            Logistic = 14,

            /// The variant `LSH_PROJECTION` in the enum `BuiltinOperator`
            LshProjection = 15,

            /// The variant `LSTM` in the enum `BuiltinOperator`
            Lstm = 16,

            /// The variant `MAX_POOL_2D` in the enum `BuiltinOperator`
            MaxPool2d = 17,

            /// The variant `MUL` in the enum `BuiltinOperator`
            Mul = 18,

            /// The variant `RELU` in the enum `BuiltinOperator`
            Relu = 19,

            /// The variant `RELU_N1_TO_1` in the enum `BuiltinOperator`
            ReluN1To1 = 20,

            /// The variant `RELU6` in the enum `BuiltinOperator`
            Relu6 = 21,

            /// The variant `RESHAPE` in the enum `BuiltinOperator`
            Reshape = 22,

            /// The variant `RESIZE_BILINEAR` in the enum `BuiltinOperator`
            ResizeBilinear = 23,

            /// The variant `RNN` in the enum `BuiltinOperator`
            Rnn = 24,

            /// The variant `SOFTMAX` in the enum `BuiltinOperator`
            Softmax = 25,

            /// The variant `SPACE_TO_DEPTH` in the enum `BuiltinOperator`
            SpaceToDepth = 26,

            /// The variant `SVDF` in the enum `BuiltinOperator`
            Svdf = 27,

            /// The variant `TANH` in the enum `BuiltinOperator`
            Tanh = 28,

            /// The variant `CONCAT_EMBEDDINGS` in the enum `BuiltinOperator`
            ConcatEmbeddings = 29,

            /// The variant `SKIP_GRAM` in the enum `BuiltinOperator`
            SkipGram = 30,

            /// The variant `CALL` in the enum `BuiltinOperator`
            Call = 31,

            /// The variant `CUSTOM` in the enum `BuiltinOperator`
            Custom = 32,

            /// The variant `EMBEDDING_LOOKUP_SPARSE` in the enum `BuiltinOperator`
            EmbeddingLookupSparse = 33,

            /// The variant `PAD` in the enum `BuiltinOperator`
            Pad = 34,

            /// The variant `UNIDIRECTIONAL_SEQUENCE_RNN` in the enum `BuiltinOperator`
            UnidirectionalSequenceRnn = 35,

            /// The variant `GATHER` in the enum `BuiltinOperator`
            Gather = 36,

            /// The variant `BATCH_TO_SPACE_ND` in the enum `BuiltinOperator`
            BatchToSpaceNd = 37,

            /// The variant `SPACE_TO_BATCH_ND` in the enum `BuiltinOperator`
            SpaceToBatchNd = 38,

            /// The variant `TRANSPOSE` in the enum `BuiltinOperator`
            Transpose = 39,

            /// The variant `MEAN` in the enum `BuiltinOperator`
            Mean = 40,

            /// The variant `SUB` in the enum `BuiltinOperator`
            Sub = 41,

            /// The variant `DIV` in the enum `BuiltinOperator`
            Div = 42,

            /// The variant `SQUEEZE` in the enum `BuiltinOperator`
            Squeeze = 43,

            /// The variant `UNIDIRECTIONAL_SEQUENCE_LSTM` in the enum `BuiltinOperator`
            UnidirectionalSequenceLstm = 44,

            /// The variant `STRIDED_SLICE` in the enum `BuiltinOperator`
            StridedSlice = 45,

            /// The variant `BIDIRECTIONAL_SEQUENCE_RNN` in the enum `BuiltinOperator`
            BidirectionalSequenceRnn = 46,

            /// The variant `EXP` in the enum `BuiltinOperator`
            Exp = 47,

            /// The variant `TOPK_V2` in the enum `BuiltinOperator`
            TopkV2 = 48,

            /// The variant `SPLIT` in the enum `BuiltinOperator`
            Split = 49,

            /// The variant `LOG_SOFTMAX` in the enum `BuiltinOperator`
            LogSoftmax = 50,

            /// The variant `DELEGATE` in the enum `BuiltinOperator`
            Delegate = 51,

            /// The variant `BIDIRECTIONAL_SEQUENCE_LSTM` in the enum `BuiltinOperator`
            BidirectionalSequenceLstm = 52,

            /// The variant `CAST` in the enum `BuiltinOperator`
            Cast = 53,

            /// The variant `PRELU` in the enum `BuiltinOperator`
            Prelu = 54,

            /// The variant `MAXIMUM` in the enum `BuiltinOperator`
            Maximum = 55,

            /// The variant `ARG_MAX` in the enum `BuiltinOperator`
            ArgMax = 56,

            /// The variant `MINIMUM` in the enum `BuiltinOperator`
            Minimum = 57,

            /// The variant `LESS` in the enum `BuiltinOperator`
            Less = 58,

            /// The variant `NEG` in the enum `BuiltinOperator`
            Neg = 59,

            /// The variant `PADV2` in the enum `BuiltinOperator`
            Padv2 = 60,

            /// The variant `GREATER` in the enum `BuiltinOperator`
            Greater = 61,

            /// The variant `GREATER_EQUAL` in the enum `BuiltinOperator`
            GreaterEqual = 62,

            /// The variant `LESS_EQUAL` in the enum `BuiltinOperator`
            LessEqual = 63,

            /// The variant `SELECT` in the enum `BuiltinOperator`
            Select = 64,

            /// The variant `SLICE` in the enum `BuiltinOperator`
            Slice = 65,

            /// The variant `SIN` in the enum `BuiltinOperator`
            Sin = 66,

            /// The variant `TRANSPOSE_CONV` in the enum `BuiltinOperator`
            TransposeConv = 67,

            /// The variant `SPARSE_TO_DENSE` in the enum `BuiltinOperator`
            SparseToDense = 68,

            /// The variant `TILE` in the enum `BuiltinOperator`
            Tile = 69,

            /// The variant `EXPAND_DIMS` in the enum `BuiltinOperator`
            ExpandDims = 70,

            /// The variant `EQUAL` in the enum `BuiltinOperator`
            Equal = 71,

            /// The variant `NOT_EQUAL` in the enum `BuiltinOperator`
            NotEqual = 72,

            /// The variant `LOG` in the enum `BuiltinOperator`
            Log = 73,

            /// The variant `SUM` in the enum `BuiltinOperator`
            Sum = 74,

            /// The variant `SQRT` in the enum `BuiltinOperator`
            Sqrt = 75,

            /// The variant `RSQRT` in the enum `BuiltinOperator`
            Rsqrt = 76,

            /// The variant `SHAPE` in the enum `BuiltinOperator`
            Shape = 77,

            /// The variant `POW` in the enum `BuiltinOperator`
            Pow = 78,

            /// The variant `ARG_MIN` in the enum `BuiltinOperator`
            ArgMin = 79,

            /// The variant `FAKE_QUANT` in the enum `BuiltinOperator`
            FakeQuant = 80,

            /// The variant `REDUCE_PROD` in the enum `BuiltinOperator`
            ReduceProd = 81,

            /// The variant `REDUCE_MAX` in the enum `BuiltinOperator`
            ReduceMax = 82,

            /// The variant `PACK` in the enum `BuiltinOperator`
            Pack = 83,

            /// The variant `LOGICAL_OR` in the enum `BuiltinOperator`
            LogicalOr = 84,

            /// The variant `ONE_HOT` in the enum `BuiltinOperator`
            OneHot = 85,

            /// The variant `LOGICAL_AND` in the enum `BuiltinOperator`
            LogicalAnd = 86,

            /// The variant `LOGICAL_NOT` in the enum `BuiltinOperator`
            LogicalNot = 87,

            /// The variant `UNPACK` in the enum `BuiltinOperator`
            Unpack = 88,

            /// The variant `REDUCE_MIN` in the enum `BuiltinOperator`
            ReduceMin = 89,

            /// The variant `FLOOR_DIV` in the enum `BuiltinOperator`
            FloorDiv = 90,

            /// The variant `REDUCE_ANY` in the enum `BuiltinOperator`
            ReduceAny = 91,

            /// The variant `SQUARE` in the enum `BuiltinOperator`
            Square = 92,

            /// The variant `ZEROS_LIKE` in the enum `BuiltinOperator`
            ZerosLike = 93,

            /// The variant `FILL` in the enum `BuiltinOperator`
            Fill = 94,

            /// The variant `FLOOR_MOD` in the enum `BuiltinOperator`
            FloorMod = 95,

            /// The variant `RANGE` in the enum `BuiltinOperator`
            Range = 96,

            /// The variant `RESIZE_NEAREST_NEIGHBOR` in the enum `BuiltinOperator`
            ResizeNearestNeighbor = 97,

            /// The variant `LEAKY_RELU` in the enum `BuiltinOperator`
            LeakyRelu = 98,

            /// The variant `SQUARED_DIFFERENCE` in the enum `BuiltinOperator`
            SquaredDifference = 99,

            /// The variant `MIRROR_PAD` in the enum `BuiltinOperator`
            MirrorPad = 100,

            /// The variant `ABS` in the enum `BuiltinOperator`
            Abs = 101,

            /// The variant `SPLIT_V` in the enum `BuiltinOperator`
            SplitV = 102,

            /// The variant `UNIQUE` in the enum `BuiltinOperator`
            Unique = 103,

            /// The variant `CEIL` in the enum `BuiltinOperator`
            Ceil = 104,

            /// The variant `REVERSE_V2` in the enum `BuiltinOperator`
            ReverseV2 = 105,

            /// The variant `ADD_N` in the enum `BuiltinOperator`
            AddN = 106,

            /// The variant `GATHER_ND` in the enum `BuiltinOperator`
            GatherNd = 107,

            /// The variant `COS` in the enum `BuiltinOperator`
            Cos = 108,

            /// The variant `WHERE` in the enum `BuiltinOperator`
            Where = 109,

            /// The variant `RANK` in the enum `BuiltinOperator`
            Rank = 110,

            /// The variant `ELU` in the enum `BuiltinOperator`
            Elu = 111,

            /// The variant `REVERSE_SEQUENCE` in the enum `BuiltinOperator`
            ReverseSequence = 112,

            /// The variant `MATRIX_DIAG` in the enum `BuiltinOperator`
            MatrixDiag = 113,

            /// The variant `QUANTIZE` in the enum `BuiltinOperator`
            Quantize = 114,

            /// The variant `MATRIX_SET_DIAG` in the enum `BuiltinOperator`
            MatrixSetDiag = 115,

            /// The variant `ROUND` in the enum `BuiltinOperator`
            Round = 116,

            /// The variant `HARD_SWISH` in the enum `BuiltinOperator`
            HardSwish = 117,

            /// The variant `IF` in the enum `BuiltinOperator`
            If = 118,

            /// The variant `WHILE` in the enum `BuiltinOperator`
            While = 119,

            /// The variant `NON_MAX_SUPPRESSION_V4` in the enum `BuiltinOperator`
            NonMaxSuppressionV4 = 120,

            /// The variant `NON_MAX_SUPPRESSION_V5` in the enum `BuiltinOperator`
            NonMaxSuppressionV5 = 121,

            /// The variant `SCATTER_ND` in the enum `BuiltinOperator`
            ScatterNd = 122,

            /// The variant `SELECT_V2` in the enum `BuiltinOperator`
            SelectV2 = 123,

            /// The variant `DENSIFY` in the enum `BuiltinOperator`
            Densify = 124,

            /// The variant `SEGMENT_SUM` in the enum `BuiltinOperator`
            SegmentSum = 125,

            /// The variant `BATCH_MATMUL` in the enum `BuiltinOperator`
            BatchMatmul = 126,

            /// The variant `PLACEHOLDER_FOR_GREATER_OP_CODES` in the enum `BuiltinOperator`
            PlaceholderForGreaterOpCodes = 127,

            /// The variant `CUMSUM` in the enum `BuiltinOperator`
            Cumsum = 128,

            /// The variant `CALL_ONCE` in the enum `BuiltinOperator`
            CallOnce = 129,

            /// The variant `BROADCAST_TO` in the enum `BuiltinOperator`
            BroadcastTo = 130,

            /// The variant `RFFT2D` in the enum `BuiltinOperator`
            Rfft2d = 131,

            /// The variant `CONV_3D` in the enum `BuiltinOperator`
            Conv3d = 132,

            /// The variant `IMAG` in the enum `BuiltinOperator`
            Imag = 133,

            /// The variant `REAL` in the enum `BuiltinOperator`
            Real = 134,

            /// The variant `COMPLEX_ABS` in the enum `BuiltinOperator`
            ComplexAbs = 135,

            /// The variant `HASHTABLE` in the enum `BuiltinOperator`
            Hashtable = 136,

            /// The variant `HASHTABLE_FIND` in the enum `BuiltinOperator`
            HashtableFind = 137,

            /// The variant `HASHTABLE_IMPORT` in the enum `BuiltinOperator`
            HashtableImport = 138,

            /// The variant `HASHTABLE_SIZE` in the enum `BuiltinOperator`
            HashtableSize = 139,

            /// The variant `REDUCE_ALL` in the enum `BuiltinOperator`
            ReduceAll = 140,

            /// The variant `CONV_3D_TRANSPOSE` in the enum `BuiltinOperator`
            Conv3dTranspose = 141,

            /// The variant `VAR_HANDLE` in the enum `BuiltinOperator`
            VarHandle = 142,

            /// The variant `READ_VARIABLE` in the enum `BuiltinOperator`
            ReadVariable = 143,

            /// The variant `ASSIGN_VARIABLE` in the enum `BuiltinOperator`
            AssignVariable = 144,

            /// The variant `BROADCAST_ARGS` in the enum `BuiltinOperator`
            BroadcastArgs = 145,

            /// The variant `RANDOM_STANDARD_NORMAL` in the enum `BuiltinOperator`
            RandomStandardNormal = 146,

            /// The variant `BUCKETIZE` in the enum `BuiltinOperator`
            Bucketize = 147,

            /// The variant `RANDOM_UNIFORM` in the enum `BuiltinOperator`
            RandomUniform = 148,

            /// The variant `MULTINOMIAL` in the enum `BuiltinOperator`
            Multinomial = 149,

            /// The variant `GELU` in the enum `BuiltinOperator`
            Gelu = 150,

            /// The variant `DYNAMIC_UPDATE_SLICE` in the enum `BuiltinOperator`
            DynamicUpdateSlice = 151,

            /// The variant `RELU_0_TO_1` in the enum `BuiltinOperator`
            Relu0To1 = 152,

            /// The variant `UNSORTED_SEGMENT_PROD` in the enum `BuiltinOperator`
            UnsortedSegmentProd = 153,

            /// The variant `UNSORTED_SEGMENT_MAX` in the enum `BuiltinOperator`
            UnsortedSegmentMax = 154,

            /// The variant `UNSORTED_SEGMENT_SUM` in the enum `BuiltinOperator`
            UnsortedSegmentSum = 155,

            /// The variant `ATAN2` in the enum `BuiltinOperator`
            Atan2 = 156,

            /// The variant `UNSORTED_SEGMENT_MIN` in the enum `BuiltinOperator`
            UnsortedSegmentMin = 157,

            /// The variant `SIGN` in the enum `BuiltinOperator`
            Sign = 158,

            /// The variant `BITCAST` in the enum `BuiltinOperator`
            Bitcast = 159,

            /// The variant `BITWISE_XOR` in the enum `BuiltinOperator`
            BitwiseXor = 160,

            /// The variant `RIGHT_SHIFT` in the enum `BuiltinOperator`
            RightShift = 161,

            /// The variant `STABLEHLO_LOGISTIC` in the enum `BuiltinOperator`
            StablehloLogistic = 162,

            /// The variant `STABLEHLO_ADD` in the enum `BuiltinOperator`
            StablehloAdd = 163,

            /// The variant `STABLEHLO_DIVIDE` in the enum `BuiltinOperator`
            StablehloDivide = 164,

            /// The variant `STABLEHLO_MULTIPLY` in the enum `BuiltinOperator`
            StablehloMultiply = 165,

            /// The variant `STABLEHLO_MAXIMUM` in the enum `BuiltinOperator`
            StablehloMaximum = 166,

            /// The variant `STABLEHLO_RESHAPE` in the enum `BuiltinOperator`
            StablehloReshape = 167,

            /// The variant `STABLEHLO_CLAMP` in the enum `BuiltinOperator`
            StablehloClamp = 168,

            /// The variant `STABLEHLO_CONCATENATE` in the enum `BuiltinOperator`
            StablehloConcatenate = 169,

            /// The variant `STABLEHLO_BROADCAST_IN_DIM` in the enum `BuiltinOperator`
            StablehloBroadcastInDim = 170,

            /// The variant `STABLEHLO_CONVOLUTION` in the enum `BuiltinOperator`
            StablehloConvolution = 171,

            /// The variant `STABLEHLO_SLICE` in the enum `BuiltinOperator`
            StablehloSlice = 172,

            /// The variant `STABLEHLO_CUSTOM_CALL` in the enum `BuiltinOperator`
            StablehloCustomCall = 173,

            /// The variant `STABLEHLO_REDUCE` in the enum `BuiltinOperator`
            StablehloReduce = 174,

            /// The variant `STABLEHLO_ABS` in the enum `BuiltinOperator`
            StablehloAbs = 175,

            /// The variant `STABLEHLO_AND` in the enum `BuiltinOperator`
            StablehloAnd = 176,

            /// The variant `STABLEHLO_COSINE` in the enum `BuiltinOperator`
            StablehloCosine = 177,

            /// The variant `STABLEHLO_EXPONENTIAL` in the enum `BuiltinOperator`
            StablehloExponential = 178,

            /// The variant `STABLEHLO_FLOOR` in the enum `BuiltinOperator`
            StablehloFloor = 179,

            /// The variant `STABLEHLO_LOG` in the enum `BuiltinOperator`
            StablehloLog = 180,

            /// The variant `STABLEHLO_MINIMUM` in the enum `BuiltinOperator`
            StablehloMinimum = 181,

            /// The variant `STABLEHLO_NEGATE` in the enum `BuiltinOperator`
            StablehloNegate = 182,

            /// The variant `STABLEHLO_OR` in the enum `BuiltinOperator`
            StablehloOr = 183,

            /// The variant `STABLEHLO_POWER` in the enum `BuiltinOperator`
            StablehloPower = 184,

            /// The variant `STABLEHLO_REMAINDER` in the enum `BuiltinOperator`
            StablehloRemainder = 185,

            /// The variant `STABLEHLO_RSQRT` in the enum `BuiltinOperator`
            StablehloRsqrt = 186,

            /// The variant `STABLEHLO_SELECT` in the enum `BuiltinOperator`
            StablehloSelect = 187,

            /// The variant `STABLEHLO_SUBTRACT` in the enum `BuiltinOperator`
            StablehloSubtract = 188,

            /// The variant `STABLEHLO_TANH` in the enum `BuiltinOperator`
            StablehloTanh = 189,

            /// The variant `STABLEHLO_SCATTER` in the enum `BuiltinOperator`
            StablehloScatter = 190,

            /// The variant `STABLEHLO_COMPARE` in the enum `BuiltinOperator`
            StablehloCompare = 191,

            /// The variant `STABLEHLO_CONVERT` in the enum `BuiltinOperator`
            StablehloConvert = 192,

            /// The variant `STABLEHLO_DYNAMIC_SLICE` in the enum `BuiltinOperator`
            StablehloDynamicSlice = 193,

            /// The variant `STABLEHLO_DYNAMIC_UPDATE_SLICE` in the enum `BuiltinOperator`
            StablehloDynamicUpdateSlice = 194,

            /// The variant `STABLEHLO_PAD` in the enum `BuiltinOperator`
            StablehloPad = 195,

            /// The variant `STABLEHLO_IOTA` in the enum `BuiltinOperator`
            StablehloIota = 196,

            /// The variant `STABLEHLO_DOT_GENERAL` in the enum `BuiltinOperator`
            StablehloDotGeneral = 197,

            /// The variant `STABLEHLO_REDUCE_WINDOW` in the enum `BuiltinOperator`
            StablehloReduceWindow = 198,

            /// The variant `STABLEHLO_SORT` in the enum `BuiltinOperator`
            StablehloSort = 199,

            /// The variant `STABLEHLO_WHILE` in the enum `BuiltinOperator`
            StablehloWhile = 200,

            /// The variant `STABLEHLO_GATHER` in the enum `BuiltinOperator`
            StablehloGather = 201,

            /// The variant `STABLEHLO_TRANSPOSE` in the enum `BuiltinOperator`
            StablehloTranspose = 202,

            /// The variant `DILATE` in the enum `BuiltinOperator`
            Dilate = 203,

            /// The variant `STABLEHLO_RNG_BIT_GENERATOR` in the enum `BuiltinOperator`
            StablehloRngBitGenerator = 204,

            /// The variant `REDUCE_WINDOW` in the enum `BuiltinOperator`
            ReduceWindow = 205,

            /// The variant `STABLEHLO_COMPOSITE` in the enum `BuiltinOperator`
            StablehloComposite = 206,

            /// The variant `STABLEHLO_SHIFT_LEFT` in the enum `BuiltinOperator`
            StablehloShiftLeft = 207,

            /// The variant `STABLEHLO_CBRT` in the enum `BuiltinOperator`
            StablehloCbrt = 208,

            /// The variant `STABLEHLO_CASE` in the enum `BuiltinOperator`
            StablehloCase = 209,
        }

        impl BuiltinOperator {
            /// Array containing all valid variants of BuiltinOperator
            pub const ENUM_VALUES: [Self; 210] = [
                Self::Add,
                Self::AveragePool2d,
                Self::Concatenation,
                Self::Conv2d,
                Self::DepthwiseConv2d,
                Self::DepthToSpace,
                Self::Dequantize,
                Self::EmbeddingLookup,
                Self::Floor,
                Self::FullyConnected,
                Self::HashtableLookup,
                Self::L2Normalization,
                Self::L2Pool2d,
                Self::LocalResponseNormalization,
                Self::Logistic,
                Self::LshProjection,
                Self::Lstm,
                Self::MaxPool2d,
                Self::Mul,
                Self::Relu,
                Self::ReluN1To1,
                Self::Relu6,
                Self::Reshape,
                Self::ResizeBilinear,
                Self::Rnn,
                Self::Softmax,
                Self::SpaceToDepth,
                Self::Svdf,
                Self::Tanh,
                Self::ConcatEmbeddings,
                Self::SkipGram,
                Self::Call,
                Self::Custom,
                Self::EmbeddingLookupSparse,
                Self::Pad,
                Self::UnidirectionalSequenceRnn,
                Self::Gather,
                Self::BatchToSpaceNd,
                Self::SpaceToBatchNd,
                Self::Transpose,
                Self::Mean,
                Self::Sub,
                Self::Div,
                Self::Squeeze,
                Self::UnidirectionalSequenceLstm,
                Self::StridedSlice,
                Self::BidirectionalSequenceRnn,
                Self::Exp,
                Self::TopkV2,
                Self::Split,
                Self::LogSoftmax,
                Self::Delegate,
                Self::BidirectionalSequenceLstm,
                Self::Cast,
                Self::Prelu,
                Self::Maximum,
                Self::ArgMax,
                Self::Minimum,
                Self::Less,
                Self::Neg,
                Self::Padv2,
                Self::Greater,
                Self::GreaterEqual,
                Self::LessEqual,
                Self::Select,
                Self::Slice,
                Self::Sin,
                Self::TransposeConv,
                Self::SparseToDense,
                Self::Tile,
                Self::ExpandDims,
                Self::Equal,
                Self::NotEqual,
                Self::Log,
                Self::Sum,
                Self::Sqrt,
                Self::Rsqrt,
                Self::Shape,
                Self::Pow,
                Self::ArgMin,
                Self::FakeQuant,
                Self::ReduceProd,
                Self::ReduceMax,
                Self::Pack,
                Self::LogicalOr,
                Self::OneHot,
                Self::LogicalAnd,
                Self::LogicalNot,
                Self::Unpack,
                Self::ReduceMin,
                Self::FloorDiv,
                Self::ReduceAny,
                Self::Square,
                Self::ZerosLike,
                Self::Fill,
                Self::FloorMod,
                Self::Range,
                Self::ResizeNearestNeighbor,
                Self::LeakyRelu,
                Self::SquaredDifference,
                Self::MirrorPad,
                Self::Abs,
                Self::SplitV,
                Self::Unique,
                Self::Ceil,
                Self::ReverseV2,
                Self::AddN,
                Self::GatherNd,
                Self::Cos,
                Self::Where,
                Self::Rank,
                Self::Elu,
                Self::ReverseSequence,
                Self::MatrixDiag,
                Self::Quantize,
                Self::MatrixSetDiag,
                Self::Round,
                Self::HardSwish,
                Self::If,
                Self::While,
                Self::NonMaxSuppressionV4,
                Self::NonMaxSuppressionV5,
                Self::ScatterNd,
                Self::SelectV2,
                Self::Densify,
                Self::SegmentSum,
                Self::BatchMatmul,
                Self::PlaceholderForGreaterOpCodes,
                Self::Cumsum,
                Self::CallOnce,
                Self::BroadcastTo,
                Self::Rfft2d,
                Self::Conv3d,
                Self::Imag,
                Self::Real,
                Self::ComplexAbs,
                Self::Hashtable,
                Self::HashtableFind,
                Self::HashtableImport,
                Self::HashtableSize,
                Self::ReduceAll,
                Self::Conv3dTranspose,
                Self::VarHandle,
                Self::ReadVariable,
                Self::AssignVariable,
                Self::BroadcastArgs,
                Self::RandomStandardNormal,
                Self::Bucketize,
                Self::RandomUniform,
                Self::Multinomial,
                Self::Gelu,
                Self::DynamicUpdateSlice,
                Self::Relu0To1,
                Self::UnsortedSegmentProd,
                Self::UnsortedSegmentMax,
                Self::UnsortedSegmentSum,
                Self::Atan2,
                Self::UnsortedSegmentMin,
                Self::Sign,
                Self::Bitcast,
                Self::BitwiseXor,
                Self::RightShift,
                Self::StablehloLogistic,
                Self::StablehloAdd,
                Self::StablehloDivide,
                Self::StablehloMultiply,
                Self::StablehloMaximum,
                Self::StablehloReshape,
                Self::StablehloClamp,
                Self::StablehloConcatenate,
                Self::StablehloBroadcastInDim,
                Self::StablehloConvolution,
                Self::StablehloSlice,
                Self::StablehloCustomCall,
                Self::StablehloReduce,
                Self::StablehloAbs,
                Self::StablehloAnd,
                Self::StablehloCosine,
                Self::StablehloExponential,
                Self::StablehloFloor,
                Self::StablehloLog,
                Self::StablehloMinimum,
                Self::StablehloNegate,
                Self::StablehloOr,
                Self::StablehloPower,
                Self::StablehloRemainder,
                Self::StablehloRsqrt,
                Self::StablehloSelect,
                Self::StablehloSubtract,
                Self::StablehloTanh,
                Self::StablehloScatter,
                Self::StablehloCompare,
                Self::StablehloConvert,
                Self::StablehloDynamicSlice,
                Self::StablehloDynamicUpdateSlice,
                Self::StablehloPad,
                Self::StablehloIota,
                Self::StablehloDotGeneral,
                Self::StablehloReduceWindow,
                Self::StablehloSort,
                Self::StablehloWhile,
                Self::StablehloGather,
                Self::StablehloTranspose,
                Self::Dilate,
                Self::StablehloRngBitGenerator,
                Self::ReduceWindow,
                Self::StablehloComposite,
                Self::StablehloShiftLeft,
                Self::StablehloCbrt,
                Self::StablehloCase,
            ];
        }

        impl ::core::convert::TryFrom<i32> for BuiltinOperator {
            type Error = ::planus::errors::UnknownEnumTagKind;
            #[inline]
            fn try_from(
                value: i32,
            ) -> ::core::result::Result<Self, ::planus::errors::UnknownEnumTagKind> {
                #[allow(clippy::match_single_binding)]
                match value {
                    0 => ::core::result::Result::Ok(BuiltinOperator::Add),
                    1 => ::core::result::Result::Ok(BuiltinOperator::AveragePool2d),
                    2 => ::core::result::Result::Ok(BuiltinOperator::Concatenation),
                    3 => ::core::result::Result::Ok(BuiltinOperator::Conv2d),
                    4 => ::core::result::Result::Ok(BuiltinOperator::DepthwiseConv2d),
                    5 => ::core::result::Result::Ok(BuiltinOperator::DepthToSpace),
                    6 => ::core::result::Result::Ok(BuiltinOperator::Dequantize),
                    7 => ::core::result::Result::Ok(BuiltinOperator::EmbeddingLookup),
                    8 => ::core::result::Result::Ok(BuiltinOperator::Floor),
                    9 => ::core::result::Result::Ok(BuiltinOperator::FullyConnected),
                    10 => ::core::result::Result::Ok(BuiltinOperator::HashtableLookup),
                    11 => ::core::result::Result::Ok(BuiltinOperator::L2Normalization),
                    12 => ::core::result::Result::Ok(BuiltinOperator::L2Pool2d),
                    13 => ::core::result::Result::Ok(BuiltinOperator::LocalResponseNormalization),
                    14 => ::core::result::Result::Ok(BuiltinOperator::Logistic),
                    15 => ::core::result::Result::Ok(BuiltinOperator::LshProjection),
                    16 => ::core::result::Result::Ok(BuiltinOperator::Lstm),
                    17 => ::core::result::Result::Ok(BuiltinOperator::MaxPool2d),
                    18 => ::core::result::Result::Ok(BuiltinOperator::Mul),
                    19 => ::core::result::Result::Ok(BuiltinOperator::Relu),
                    20 => ::core::result::Result::Ok(BuiltinOperator::ReluN1To1),
                    21 => ::core::result::Result::Ok(BuiltinOperator::Relu6),
                    22 => ::core::result::Result::Ok(BuiltinOperator::Reshape),
                    23 => ::core::result::Result::Ok(BuiltinOperator::ResizeBilinear),
                    24 => ::core::result::Result::Ok(BuiltinOperator::Rnn),
                    25 => ::core::result::Result::Ok(BuiltinOperator::Softmax),
                    26 => ::core::result::Result::Ok(BuiltinOperator::SpaceToDepth),
                    27 => ::core::result::Result::Ok(BuiltinOperator::Svdf),
                    28 => ::core::result::Result::Ok(BuiltinOperator::Tanh),
                    29 => ::core::result::Result::Ok(BuiltinOperator::ConcatEmbeddings),
                    30 => ::core::result::Result::Ok(BuiltinOperator::SkipGram),
                    31 => ::core::result::Result::Ok(BuiltinOperator::Call),
                    32 => ::core::result::Result::Ok(BuiltinOperator::Custom),
                    33 => ::core::result::Result::Ok(BuiltinOperator::EmbeddingLookupSparse),
                    34 => ::core::result::Result::Ok(BuiltinOperator::Pad),
                    35 => ::core::result::Result::Ok(BuiltinOperator::UnidirectionalSequenceRnn),
                    36 => ::core::result::Result::Ok(BuiltinOperator::Gather),
                    37 => ::core::result::Result::Ok(BuiltinOperator::BatchToSpaceNd),
                    38 => ::core::result::Result::Ok(BuiltinOperator::SpaceToBatchNd),
                    39 => ::core::result::Result::Ok(BuiltinOperator::Transpose),
                    40 => ::core::result::Result::Ok(BuiltinOperator::Mean),
                    41 => ::core::result::Result::Ok(BuiltinOperator::Sub),
                    42 => ::core::result::Result::Ok(BuiltinOperator::Div),
                    43 => ::core::result::Result::Ok(BuiltinOperator::Squeeze),
                    44 => ::core::result::Result::Ok(BuiltinOperator::UnidirectionalSequenceLstm),
                    45 => ::core::result::Result::Ok(BuiltinOperator::StridedSlice),
                    46 => ::core::result::Result::Ok(BuiltinOperator::BidirectionalSequenceRnn),
                    47 => ::core::result::Result::Ok(BuiltinOperator::Exp),
                    48 => ::core::result::Result::Ok(BuiltinOperator::TopkV2),
                    49 => ::core::result::Result::Ok(BuiltinOperator::Split),
                    50 => ::core::result::Result::Ok(BuiltinOperator::LogSoftmax),
                    51 => ::core::result::Result::Ok(BuiltinOperator::Delegate),
                    52 => ::core::result::Result::Ok(BuiltinOperator::BidirectionalSequenceLstm),
                    53 => ::core::result::Result::Ok(BuiltinOperator::Cast),
                    54 => ::core::result::Result::Ok(BuiltinOperator::Prelu),
                    55 => ::core::result::Result::Ok(BuiltinOperator::Maximum),
                    56 => ::core::result::Result::Ok(BuiltinOperator::ArgMax),
                    57 => ::core::result::Result::Ok(BuiltinOperator::Minimum),
                    58 => ::core::result::Result::Ok(BuiltinOperator::Less),
                    59 => ::core::result::Result::Ok(BuiltinOperator::Neg),
                    60 => ::core::result::Result::Ok(BuiltinOperator::Padv2),
                    61 => ::core::result::Result::Ok(BuiltinOperator::Greater),
                    62 => ::core::result::Result::Ok(BuiltinOperator::GreaterEqual),
                    63 => ::core::result::Result::Ok(BuiltinOperator::LessEqual),
                    64 => ::core::result::Result::Ok(BuiltinOperator::Select),
                    65 => ::core::result::Result::Ok(BuiltinOperator::Slice),
                    66 => ::core::result::Result::Ok(BuiltinOperator::Sin),
                    67 => ::core::result::Result::Ok(BuiltinOperator::TransposeConv),
                    68 => ::core::result::Result::Ok(BuiltinOperator::SparseToDense),
                    69 => ::core::result::Result::Ok(BuiltinOperator::Tile),
                    70 => ::core::result::Result::Ok(BuiltinOperator::ExpandDims),
                    71 => ::core::result::Result::Ok(BuiltinOperator::Equal),
                    72 => ::core::result::Result::Ok(BuiltinOperator::NotEqual),
                    73 => ::core::result::Result::Ok(BuiltinOperator::Log),
                    74 => ::core::result::Result::Ok(BuiltinOperator::Sum),
                    75 => ::core::result::Result::Ok(BuiltinOperator::Sqrt),
                    76 => ::core::result::Result::Ok(BuiltinOperator::Rsqrt),
                    77 => ::core::result::Result::Ok(BuiltinOperator::Shape),
                    78 => ::core::result::Result::Ok(BuiltinOperator::Pow),
                    79 => ::core::result::Result::Ok(BuiltinOperator::ArgMin),
                    80 => ::core::result::Result::Ok(BuiltinOperator::FakeQuant),
                    81 => ::core::result::Result::Ok(BuiltinOperator::ReduceProd),
                    82 => ::core::result::Result::Ok(BuiltinOperator::ReduceMax),
                    83 => ::core::result::Result::Ok(BuiltinOperator::Pack),
                    84 => ::core::result::Result::Ok(BuiltinOperator::LogicalOr),
                    85 => ::core::result::Result::Ok(BuiltinOperator::OneHot),
                    86 => ::core::result::Result::Ok(BuiltinOperator::LogicalAnd),
                    87 => ::core::result::Result::Ok(BuiltinOperator::LogicalNot),
                    88 => ::core::result::Result::Ok(BuiltinOperator::Unpack),
                    89 => ::core::result::Result::Ok(BuiltinOperator::ReduceMin),
                    90 => ::core::result::Result::Ok(BuiltinOperator::FloorDiv),
                    91 => ::core::result::Result::Ok(BuiltinOperator::ReduceAny),
                    92 => ::core::result::Result::Ok(BuiltinOperator::Square),
                    93 => ::core::result::Result::Ok(BuiltinOperator::ZerosLike),
                    94 => ::core::result::Result::Ok(BuiltinOperator::Fill),
                    95 => ::core::result::Result::Ok(BuiltinOperator::FloorMod),
                    96 => ::core::result::Result::Ok(BuiltinOperator::Range),
                    97 => ::core::result::Result::Ok(BuiltinOperator::ResizeNearestNeighbor),
                    98 => ::core::result::Result::Ok(BuiltinOperator::LeakyRelu),
                    99 => ::core::result::Result::Ok(BuiltinOperator::SquaredDifference),
                    100 => ::core::result::Result::Ok(BuiltinOperator::MirrorPad),
                    101 => ::core::result::Result::Ok(BuiltinOperator::Abs),
                    102 => ::core::result::Result::Ok(BuiltinOperator::SplitV),
                    103 => ::core::result::Result::Ok(BuiltinOperator::Unique),
                    104 => ::core::result::Result::Ok(BuiltinOperator::Ceil),
                    105 => ::core::result::Result::Ok(BuiltinOperator::ReverseV2),
                    106 => ::core::result::Result::Ok(BuiltinOperator::AddN),
                    107 => ::core::result::Result::Ok(BuiltinOperator::GatherNd),
                    108 => ::core::result::Result::Ok(BuiltinOperator::Cos),
                    109 => ::core::result::Result::Ok(BuiltinOperator::Where),
                    110 => ::core::result::Result::Ok(BuiltinOperator::Rank),
                    111 => ::core::result::Result::Ok(BuiltinOperator::Elu),
                    112 => ::core::result::Result::Ok(BuiltinOperator::ReverseSequence),
                    113 => ::core::result::Result::Ok(BuiltinOperator::MatrixDiag),
                    114 => ::core::result::Result::Ok(BuiltinOperator::Quantize),
                    115 => ::core::result::Result::Ok(BuiltinOperator::MatrixSetDiag),
                    116 => ::core::result::Result::Ok(BuiltinOperator::Round),
                    117 => ::core::result::Result::Ok(BuiltinOperator::HardSwish),
                    118 => ::core::result::Result::Ok(BuiltinOperator::If),
                    119 => ::core::result::Result::Ok(BuiltinOperator::While),
                    120 => ::core::result::Result::Ok(BuiltinOperator::NonMaxSuppressionV4),
                    121 => ::core::result::Result::Ok(BuiltinOperator::NonMaxSuppressionV5),
                    122 => ::core::result::Result::Ok(BuiltinOperator::ScatterNd),
                    123 => ::core::result::Result::Ok(BuiltinOperator::SelectV2),
                    124 => ::core::result::Result::Ok(BuiltinOperator::Densify),
                    125 => ::core::result::Result::Ok(BuiltinOperator::SegmentSum),
                    126 => ::core::result::Result::Ok(BuiltinOperator::BatchMatmul),
                    127 => {
                        ::core::result::Result::Ok(BuiltinOperator::PlaceholderForGreaterOpCodes)
                    }
                    128 => ::core::result::Result::Ok(BuiltinOperator::Cumsum),
                    129 => ::core::result::Result::Ok(BuiltinOperator::CallOnce),
                    130 => ::core::result::Result::Ok(BuiltinOperator::BroadcastTo),
                    131 => ::core::result::Result::Ok(BuiltinOperator::Rfft2d),
                    132 => ::core::result::Result::Ok(BuiltinOperator::Conv3d),
                    133 => ::core::result::Result::Ok(BuiltinOperator::Imag),
                    134 => ::core::result::Result::Ok(BuiltinOperator::Real),
                    135 => ::core::result::Result::Ok(BuiltinOperator::ComplexAbs),
                    136 => ::core::result::Result::Ok(BuiltinOperator::Hashtable),
                    137 => ::core::result::Result::Ok(BuiltinOperator::HashtableFind),
                    138 => ::core::result::Result::Ok(BuiltinOperator::HashtableImport),
                    139 => ::core::result::Result::Ok(BuiltinOperator::HashtableSize),
                    140 => ::core::result::Result::Ok(BuiltinOperator::ReduceAll),
                    141 => ::core::result::Result::Ok(BuiltinOperator::Conv3dTranspose),
                    142 => ::core::result::Result::Ok(BuiltinOperator::VarHandle),
                    143 => ::core::result::Result::Ok(BuiltinOperator::ReadVariable),
                    144 => ::core::result::Result::Ok(BuiltinOperator::AssignVariable),
                    145 => ::core::result::Result::Ok(BuiltinOperator::BroadcastArgs),
                    146 => ::core::result::Result::Ok(BuiltinOperator::RandomStandardNormal),
                    147 => ::core::result::Result::Ok(BuiltinOperator::Bucketize),
                    148 => ::core::result::Result::Ok(BuiltinOperator::RandomUniform),
                    149 => ::core::result::Result::Ok(BuiltinOperator::Multinomial),
                    150 => ::core::result::Result::Ok(BuiltinOperator::Gelu),
                    151 => ::core::result::Result::Ok(BuiltinOperator::DynamicUpdateSlice),
                    152 => ::core::result::Result::Ok(BuiltinOperator::Relu0To1),
                    153 => ::core::result::Result::Ok(BuiltinOperator::UnsortedSegmentProd),
                    154 => ::core::result::Result::Ok(BuiltinOperator::UnsortedSegmentMax),
                    155 => ::core::result::Result::Ok(BuiltinOperator::UnsortedSegmentSum),
                    156 => ::core::result::Result::Ok(BuiltinOperator::Atan2),
                    157 => ::core::result::Result::Ok(BuiltinOperator::UnsortedSegmentMin),
                    158 => ::core::result::Result::Ok(BuiltinOperator::Sign),
                    159 => ::core::result::Result::Ok(BuiltinOperator::Bitcast),
                    160 => ::core::result::Result::Ok(BuiltinOperator::BitwiseXor),
                    161 => ::core::result::Result::Ok(BuiltinOperator::RightShift),
                    162 => ::core::result::Result::Ok(BuiltinOperator::StablehloLogistic),
                    163 => ::core::result::Result::Ok(BuiltinOperator::StablehloAdd),
                    164 => ::core::result::Result::Ok(BuiltinOperator::StablehloDivide),
                    165 => ::core::result::Result::Ok(BuiltinOperator::StablehloMultiply),
                    166 => ::core::result::Result::Ok(BuiltinOperator::StablehloMaximum),
                    167 => ::core::result::Result::Ok(BuiltinOperator::StablehloReshape),
                    168 => ::core::result::Result::Ok(BuiltinOperator::StablehloClamp),
                    169 => ::core::result::Result::Ok(BuiltinOperator::StablehloConcatenate),
                    170 => ::core::result::Result::Ok(BuiltinOperator::StablehloBroadcastInDim),
                    171 => ::core::result::Result::Ok(BuiltinOperator::StablehloConvolution),
                    172 => ::core::result::Result::Ok(BuiltinOperator::StablehloSlice),
                    173 => ::core::result::Result::Ok(BuiltinOperator::StablehloCustomCall),
                    174 => ::core::result::Result::Ok(BuiltinOperator::StablehloReduce),
                    175 => ::core::result::Result::Ok(BuiltinOperator::StablehloAbs),
                    176 => ::core::result::Result::Ok(BuiltinOperator::StablehloAnd),
                    177 => ::core::result::Result::Ok(BuiltinOperator::StablehloCosine),
                    178 => ::core::result::Result::Ok(BuiltinOperator::StablehloExponential),
                    179 => ::core::result::Result::Ok(BuiltinOperator::StablehloFloor),
                    180 => ::core::result::Result::Ok(BuiltinOperator::StablehloLog),
                    181 => ::core::result::Result::Ok(BuiltinOperator::StablehloMinimum),
                    182 => ::core::result::Result::Ok(BuiltinOperator::StablehloNegate),
                    183 => ::core::result::Result::Ok(BuiltinOperator::StablehloOr),
                    184 => ::core::result::Result::Ok(BuiltinOperator::StablehloPower),
                    185 => ::core::result::Result::Ok(BuiltinOperator::StablehloRemainder),
                    186 => ::core::result::Result::Ok(BuiltinOperator::StablehloRsqrt),
                    187 => ::core::result::Result::Ok(BuiltinOperator::StablehloSelect),
                    188 => ::core::result::Result::Ok(BuiltinOperator::StablehloSubtract),
                    189 => ::core::result::Result::Ok(BuiltinOperator::StablehloTanh),
                    190 => ::core::result::Result::Ok(BuiltinOperator::StablehloScatter),
                    191 => ::core::result::Result::Ok(BuiltinOperator::StablehloCompare),
                    192 => ::core::result::Result::Ok(BuiltinOperator::StablehloConvert),
                    193 => ::core::result::Result::Ok(BuiltinOperator::StablehloDynamicSlice),
                    194 => ::core::result::Result::Ok(BuiltinOperator::StablehloDynamicUpdateSlice),
                    195 => ::core::result::Result::Ok(BuiltinOperator::StablehloPad),
                    196 => ::core::result::Result::Ok(BuiltinOperator::StablehloIota),
                    197 => ::core::result::Result::Ok(BuiltinOperator::StablehloDotGeneral),
                    198 => ::core::result::Result::Ok(BuiltinOperator::StablehloReduceWindow),
                    199 => ::core::result::Result::Ok(BuiltinOperator::StablehloSort),
                    200 => ::core::result::Result::Ok(BuiltinOperator::StablehloWhile),
                    201 => ::core::result::Result::Ok(BuiltinOperator::StablehloGather),
                    202 => ::core::result::Result::Ok(BuiltinOperator::StablehloTranspose),
                    203 => ::core::result::Result::Ok(BuiltinOperator::Dilate),
                    204 => ::core::result::Result::Ok(BuiltinOperator::StablehloRngBitGenerator),
                    205 => ::core::result::Result::Ok(BuiltinOperator::ReduceWindow),
                    206 => ::core::result::Result::Ok(BuiltinOperator::StablehloComposite),
                    207 => ::core::result::Result::Ok(BuiltinOperator::StablehloShiftLeft),
                    208 => ::core::result::Result::Ok(BuiltinOperator::StablehloCbrt),
                    209 => ::core::result::Result::Ok(BuiltinOperator::StablehloCase),

                    _ => ::core::result::Result::Err(::planus::errors::UnknownEnumTagKind {
                        tag: value as i128,
                    }),
                }
            }
        }

        impl ::core::convert::From<BuiltinOperator> for i32 {
            #[inline]
            fn from(value: BuiltinOperator) -> Self {
                value as i32
            }
        }

        /// # Safety
        /// The Planus compiler correctly calculates `ALIGNMENT` and `SIZE`.
        unsafe impl ::planus::Primitive for BuiltinOperator {
            const ALIGNMENT: usize = 4;
            const SIZE: usize = 4;
        }

        impl ::planus::WriteAsPrimitive<BuiltinOperator> for BuiltinOperator {
            #[inline]
            fn write<const N: usize>(&self, cursor: ::planus::Cursor<'_, N>, buffer_position: u32) {
                (*self as i32).write(cursor, buffer_position);
            }
        }

        impl ::planus::WriteAs<BuiltinOperator> for BuiltinOperator {
            type Prepared = Self;

            #[inline]
            fn prepare(&self, _builder: &mut ::planus::Builder) -> BuiltinOperator {
                *self
            }
        }

        impl ::planus::WriteAsDefault<BuiltinOperator, BuiltinOperator> for BuiltinOperator {
            type Prepared = Self;

            #[inline]
            fn prepare(
                &self,
                _builder: &mut ::planus::Builder,
                default: &BuiltinOperator,
            ) -> ::core::option::Option<BuiltinOperator> {
                if self == default {
                    ::core::option::Option::None
                } else {
                    ::core::option::Option::Some(*self)
                }
            }
        }

        impl ::planus::WriteAsOptional<BuiltinOperator> for BuiltinOperator {
            type Prepared = Self;

            #[inline]
            fn prepare(
                &self,
                _builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<BuiltinOperator> {
                ::core::option::Option::Some(*self)
            }
        }

        impl<'buf> ::planus::TableRead<'buf> for BuiltinOperator {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'buf>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                let n: i32 = ::planus::TableRead::from_buffer(buffer, offset)?;
                ::core::result::Result::Ok(::core::convert::TryInto::try_into(n)?)
            }
        }

        impl<'buf> ::planus::VectorReadInner<'buf> for BuiltinOperator {
            type Error = ::planus::errors::UnknownEnumTag;
            const STRIDE: usize = 4;
            #[inline]
            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'buf>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::UnknownEnumTag> {
                let value = unsafe { <i32 as ::planus::VectorRead>::from_buffer(buffer, offset) };
                let value: ::core::result::Result<Self, _> =
                    ::core::convert::TryInto::try_into(value);
                value.map_err(|error_kind| {
                    error_kind.with_error_location(
                        "BuiltinOperator",
                        "VectorRead::from_buffer",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<BuiltinOperator> for BuiltinOperator {
            const STRIDE: usize = 4;

            type Value = Self;

            #[inline]
            fn prepare(&self, _builder: &mut ::planus::Builder) -> Self {
                *self
            }

            #[inline]
            unsafe fn write_values(
                values: &[Self],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (4 * i) as u32,
                    );
                }
            }
        }

        /// The table `CustomQuantization` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `CustomQuantization` in the file `schema/tflite_subset.fbs:255`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct CustomQuantization {
            /// The field `custom` in the table `CustomQuantization`
            pub custom: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for CustomQuantization {
            fn default() -> Self {
                Self {
                    custom: ::core::default::Default::default(),
                }
            }
        }

        impl CustomQuantization {
            /// Creates a [CustomQuantizationBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> CustomQuantizationBuilder<()> {
                CustomQuantizationBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_custom: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            ) -> ::planus::Offset<Self> {
                let prepared_custom = field_custom.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_custom.is_some() {
                    table_writer.write_entry::<::planus::Offset<[u8]>>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_custom) = prepared_custom {
                            object_writer.write::<_, _, 4>(&prepared_custom);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<CustomQuantization>> for CustomQuantization {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<CustomQuantization>> for CustomQuantization {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<CustomQuantization>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<CustomQuantization> for CustomQuantization {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization> {
                CustomQuantization::create(builder, &self.custom)
            }
        }

        /// Builder for serializing an instance of the [CustomQuantization] type.
        ///
        /// Can be created using the [CustomQuantization::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct CustomQuantizationBuilder<State>(State);

        impl CustomQuantizationBuilder<()> {
            /// Setter for the [`custom` field](CustomQuantization#structfield.custom).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom<T0>(self, value: T0) -> CustomQuantizationBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            {
                CustomQuantizationBuilder((value,))
            }

            /// Sets the [`custom` field](CustomQuantization#structfield.custom) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_as_null(self) -> CustomQuantizationBuilder<((),)> {
                self.custom(())
            }
        }

        impl<T0> CustomQuantizationBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [CustomQuantization].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization>
            where
                Self: ::planus::WriteAsOffset<CustomQuantization>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>>
            ::planus::WriteAs<::planus::Offset<CustomQuantization>>
            for CustomQuantizationBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<CustomQuantization>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>>
            ::planus::WriteAsOptional<::planus::Offset<CustomQuantization>>
            for CustomQuantizationBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<CustomQuantization>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<CustomQuantization>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>>
            ::planus::WriteAsOffset<CustomQuantization> for CustomQuantizationBuilder<(T0,)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization> {
                let (v0,) = &self.0;
                CustomQuantization::create(builder, v0)
            }
        }

        /// Reference to a deserialized [CustomQuantization].
        #[derive(Copy, Clone)]
        pub struct CustomQuantizationRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> CustomQuantizationRef<'a> {
            /// Getter for the [`custom` field](CustomQuantization#structfield.custom).
            #[inline]
            pub fn custom(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                self.0.access(0, "CustomQuantization", "custom")
            }
        }

        impl<'a> ::core::fmt::Debug for CustomQuantizationRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("CustomQuantizationRef");
                if let ::core::option::Option::Some(field_custom) = self.custom().transpose() {
                    f.field("custom", &field_custom);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<CustomQuantizationRef<'a>> for CustomQuantization {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: CustomQuantizationRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    custom: value.custom()?.map(|v| v.to_vec()),
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for CustomQuantizationRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for CustomQuantizationRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[CustomQuantizationRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<CustomQuantization>> for CustomQuantization {
            type Value = ::planus::Offset<CustomQuantization>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<CustomQuantization>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for CustomQuantizationRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[CustomQuantizationRef]", "read_as_root", 0)
                })
            }
        }

        /// The union `QuantizationDetails` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Union `QuantizationDetails` in the file `schema/tflite_subset.fbs:259`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub enum QuantizationDetails {
            /// The variant of type `CustomQuantization` in the union `QuantizationDetails`
            CustomQuantization(::planus::alloc::boxed::Box<self::CustomQuantization>),
        }

        impl QuantizationDetails {
            /// Creates a [QuantizationDetailsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> QuantizationDetailsBuilder<::planus::Uninitialized> {
                QuantizationDetailsBuilder(::planus::Uninitialized)
            }

            #[inline]
            pub fn create_custom_quantization(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::CustomQuantization>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(1, value.prepare(builder).downcast())
            }
        }

        impl ::planus::WriteAsUnion<QuantizationDetails> for QuantizationDetails {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::UnionOffset<Self> {
                match self {
                    Self::CustomQuantization(value) => {
                        Self::create_custom_quantization(builder, value)
                    }
                }
            }
        }

        impl ::planus::WriteAsOptionalUnion<QuantizationDetails> for QuantizationDetails {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<Self>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }

        /// Builder for serializing an instance of the [QuantizationDetails] type.
        ///
        /// Can be created using the [QuantizationDetails::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct QuantizationDetailsBuilder<T>(T);

        impl QuantizationDetailsBuilder<::planus::Uninitialized> {
            /// Creates an instance of the [`CustomQuantization` variant](QuantizationDetails#variant.CustomQuantization).
            #[inline]
            pub fn custom_quantization<T>(
                self,
                value: T,
            ) -> QuantizationDetailsBuilder<::planus::Initialized<1, T>>
            where
                T: ::planus::WriteAsOffset<self::CustomQuantization>,
            {
                QuantizationDetailsBuilder(::planus::Initialized(value))
            }
        }

        impl<const N: u8, T> QuantizationDetailsBuilder<::planus::Initialized<N, T>> {
            /// Finish writing the builder to get an [UnionOffset](::planus::UnionOffset) to a serialized [QuantizationDetails].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<QuantizationDetails>
            where
                Self: ::planus::WriteAsUnion<QuantizationDetails>,
            {
                ::planus::WriteAsUnion::prepare(&self, builder)
            }
        }

        impl<T> ::planus::WriteAsUnion<QuantizationDetails>
            for QuantizationDetailsBuilder<::planus::Initialized<1, T>>
        where
            T: ::planus::WriteAsOffset<self::CustomQuantization>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<QuantizationDetails> {
                ::planus::UnionOffset::new(1, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<QuantizationDetails>
            for QuantizationDetailsBuilder<::planus::Initialized<1, T>>
        where
            T: ::planus::WriteAsOffset<self::CustomQuantization>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<QuantizationDetails>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }

        /// Reference to a deserialized [QuantizationDetails].
        #[derive(Copy, Clone, Debug)]
        pub enum QuantizationDetailsRef<'a> {
            CustomQuantization(self::CustomQuantizationRef<'a>),
        }

        impl<'a> ::core::convert::TryFrom<QuantizationDetailsRef<'a>> for QuantizationDetails {
            type Error = ::planus::Error;

            fn try_from(value: QuantizationDetailsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(match value {
                    QuantizationDetailsRef::CustomQuantization(value) => {
                        Self::CustomQuantization(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }
                })
            }
        }

        impl<'a> ::planus::TableReadUnion<'a> for QuantizationDetailsRef<'a> {
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                tag: u8,
                field_offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                match tag {
                    1 => ::core::result::Result::Ok(Self::CustomQuantization(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    _ => {
                        ::core::result::Result::Err(::planus::errors::ErrorKind::UnknownUnionTag {
                            tag,
                        })
                    }
                }
            }
        }

        impl<'a> ::planus::VectorReadUnion<'a> for QuantizationDetailsRef<'a> {
            const VECTOR_NAME: &'static str = "[QuantizationDetailsRef]";
        }

        /// The table `QuantizationParameters` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `QuantizationParameters` in the file `schema/tflite_subset.fbs:263`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct QuantizationParameters {
            /// The field `min` in the table `QuantizationParameters`
            pub min: ::core::option::Option<::planus::alloc::vec::Vec<f32>>,
            /// The field `max` in the table `QuantizationParameters`
            pub max: ::core::option::Option<::planus::alloc::vec::Vec<f32>>,
            /// The field `scale` in the table `QuantizationParameters`
            pub scale: ::core::option::Option<::planus::alloc::vec::Vec<f32>>,
            /// The field `zero_point` in the table `QuantizationParameters`
            pub zero_point: ::core::option::Option<::planus::alloc::vec::Vec<i64>>,
            /// The field `details` in the table `QuantizationParameters`
            pub details: ::core::option::Option<self::QuantizationDetails>,
            /// The field `quantized_dimension` in the table `QuantizationParameters`
            pub quantized_dimension: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for QuantizationParameters {
            fn default() -> Self {
                Self {
                    min: ::core::default::Default::default(),
                    max: ::core::default::Default::default(),
                    scale: ::core::default::Default::default(),
                    zero_point: ::core::default::Default::default(),
                    details: ::core::default::Default::default(),
                    quantized_dimension: 0,
                }
            }
        }

        impl QuantizationParameters {
            /// Creates a [QuantizationParametersBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> QuantizationParametersBuilder<()> {
                QuantizationParametersBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_min: impl ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                field_max: impl ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                field_scale: impl ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                field_zero_point: impl ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
                field_details: impl ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
                field_quantized_dimension: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_min = field_min.prepare(builder);
                let prepared_max = field_max.prepare(builder);
                let prepared_scale = field_scale.prepare(builder);
                let prepared_zero_point = field_zero_point.prepare(builder);
                let prepared_details = field_details.prepare(builder);
                let prepared_quantized_dimension = field_quantized_dimension.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<18> =
                    ::core::default::Default::default();
                if prepared_min.is_some() {
                    table_writer.write_entry::<::planus::Offset<[f32]>>(0);
                }
                if prepared_max.is_some() {
                    table_writer.write_entry::<::planus::Offset<[f32]>>(1);
                }
                if prepared_scale.is_some() {
                    table_writer.write_entry::<::planus::Offset<[f32]>>(2);
                }
                if prepared_zero_point.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i64]>>(3);
                }
                if prepared_details.is_some() {
                    table_writer.write_entry::<::planus::Offset<self::QuantizationDetails>>(5);
                }
                if prepared_quantized_dimension.is_some() {
                    table_writer.write_entry::<i32>(6);
                }
                if prepared_details.is_some() {
                    table_writer.write_entry::<u8>(4);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_min) = prepared_min {
                            object_writer.write::<_, _, 4>(&prepared_min);
                        }
                        if let ::core::option::Option::Some(prepared_max) = prepared_max {
                            object_writer.write::<_, _, 4>(&prepared_max);
                        }
                        if let ::core::option::Option::Some(prepared_scale) = prepared_scale {
                            object_writer.write::<_, _, 4>(&prepared_scale);
                        }
                        if let ::core::option::Option::Some(prepared_zero_point) =
                            prepared_zero_point
                        {
                            object_writer.write::<_, _, 4>(&prepared_zero_point);
                        }
                        if let ::core::option::Option::Some(prepared_details) = prepared_details {
                            object_writer.write::<_, _, 4>(&prepared_details.offset());
                        }
                        if let ::core::option::Option::Some(prepared_quantized_dimension) =
                            prepared_quantized_dimension
                        {
                            object_writer.write::<_, _, 4>(&prepared_quantized_dimension);
                        }
                        if let ::core::option::Option::Some(prepared_details) = prepared_details {
                            object_writer.write::<_, _, 1>(&prepared_details.tag());
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<QuantizationParameters>> for QuantizationParameters {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<QuantizationParameters>>
            for QuantizationParameters
        {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<QuantizationParameters>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<QuantizationParameters> for QuantizationParameters {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters> {
                QuantizationParameters::create(
                    builder,
                    &self.min,
                    &self.max,
                    &self.scale,
                    &self.zero_point,
                    &self.details,
                    self.quantized_dimension,
                )
            }
        }

        /// Builder for serializing an instance of the [QuantizationParameters] type.
        ///
        /// Can be created using the [QuantizationParameters::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct QuantizationParametersBuilder<State>(State);

        impl QuantizationParametersBuilder<()> {
            /// Setter for the [`min` field](QuantizationParameters#structfield.min).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn min<T0>(self, value: T0) -> QuantizationParametersBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
            {
                QuantizationParametersBuilder((value,))
            }

            /// Sets the [`min` field](QuantizationParameters#structfield.min) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn min_as_null(self) -> QuantizationParametersBuilder<((),)> {
                self.min(())
            }
        }

        impl<T0> QuantizationParametersBuilder<(T0,)> {
            /// Setter for the [`max` field](QuantizationParameters#structfield.max).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn max<T1>(self, value: T1) -> QuantizationParametersBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
            {
                let (v0,) = self.0;
                QuantizationParametersBuilder((v0, value))
            }

            /// Sets the [`max` field](QuantizationParameters#structfield.max) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn max_as_null(self) -> QuantizationParametersBuilder<(T0, ())> {
                self.max(())
            }
        }

        impl<T0, T1> QuantizationParametersBuilder<(T0, T1)> {
            /// Setter for the [`scale` field](QuantizationParameters#structfield.scale).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn scale<T2>(self, value: T2) -> QuantizationParametersBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
            {
                let (v0, v1) = self.0;
                QuantizationParametersBuilder((v0, v1, value))
            }

            /// Sets the [`scale` field](QuantizationParameters#structfield.scale) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn scale_as_null(self) -> QuantizationParametersBuilder<(T0, T1, ())> {
                self.scale(())
            }
        }

        impl<T0, T1, T2> QuantizationParametersBuilder<(T0, T1, T2)> {
            /// Setter for the [`zero_point` field](QuantizationParameters#structfield.zero_point).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn zero_point<T3>(
                self,
                value: T3,
            ) -> QuantizationParametersBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
            {
                let (v0, v1, v2) = self.0;
                QuantizationParametersBuilder((v0, v1, v2, value))
            }

            /// Sets the [`zero_point` field](QuantizationParameters#structfield.zero_point) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn zero_point_as_null(self) -> QuantizationParametersBuilder<(T0, T1, T2, ())> {
                self.zero_point(())
            }
        }

        impl<T0, T1, T2, T3> QuantizationParametersBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`details` field](QuantizationParameters#structfield.details).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn details<T4>(
                self,
                value: T4,
            ) -> QuantizationParametersBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
            {
                let (v0, v1, v2, v3) = self.0;
                QuantizationParametersBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`details` field](QuantizationParameters#structfield.details) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn details_as_null(self) -> QuantizationParametersBuilder<(T0, T1, T2, T3, ())> {
                self.details(())
            }
        }

        impl<T0, T1, T2, T3, T4> QuantizationParametersBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`quantized_dimension` field](QuantizationParameters#structfield.quantized_dimension).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantized_dimension<T5>(
                self,
                value: T5,
            ) -> QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                QuantizationParametersBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`quantized_dimension` field](QuantizationParameters#structfield.quantized_dimension) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantized_dimension_as_default(
                self,
            ) -> QuantizationParametersBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)>
            {
                self.quantized_dimension(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [QuantizationParameters].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters>
            where
                Self: ::planus::WriteAsOffset<QuantizationParameters>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
                T4: ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAs<::planus::Offset<QuantizationParameters>>
            for QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<QuantizationParameters>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
                T4: ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOptional<::planus::Offset<QuantizationParameters>>
            for QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<QuantizationParameters>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<QuantizationParameters>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
                T4: ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOffset<QuantizationParameters>
            for QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters> {
                let (v0, v1, v2, v3, v4, v5) = &self.0;
                QuantizationParameters::create(builder, v0, v1, v2, v3, v4, v5)
            }
        }

        /// Reference to a deserialized [QuantizationParameters].
        #[derive(Copy, Clone)]
        pub struct QuantizationParametersRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> QuantizationParametersRef<'a> {
            /// Getter for the [`min` field](QuantizationParameters#structfield.min).
            #[inline]
            pub fn min(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, f32>>> {
                self.0.access(0, "QuantizationParameters", "min")
            }

            /// Getter for the [`max` field](QuantizationParameters#structfield.max).
            #[inline]
            pub fn max(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, f32>>> {
                self.0.access(1, "QuantizationParameters", "max")
            }

            /// Getter for the [`scale` field](QuantizationParameters#structfield.scale).
            #[inline]
            pub fn scale(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, f32>>> {
                self.0.access(2, "QuantizationParameters", "scale")
            }

            /// Getter for the [`zero_point` field](QuantizationParameters#structfield.zero_point).
            #[inline]
            pub fn zero_point(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i64>>> {
                self.0.access(3, "QuantizationParameters", "zero_point")
            }

            /// Getter for the [`details` field](QuantizationParameters#structfield.details).
            #[inline]
            pub fn details(
                &self,
            ) -> ::planus::Result<::core::option::Option<self::QuantizationDetailsRef<'a>>>
            {
                self.0.access_union(4, "QuantizationParameters", "details")
            }

            /// Getter for the [`quantized_dimension` field](QuantizationParameters#structfield.quantized_dimension).
            #[inline]
            pub fn quantized_dimension(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(6, "QuantizationParameters", "quantized_dimension")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for QuantizationParametersRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("QuantizationParametersRef");
                if let ::core::option::Option::Some(field_min) = self.min().transpose() {
                    f.field("min", &field_min);
                }
                if let ::core::option::Option::Some(field_max) = self.max().transpose() {
                    f.field("max", &field_max);
                }
                if let ::core::option::Option::Some(field_scale) = self.scale().transpose() {
                    f.field("scale", &field_scale);
                }
                if let ::core::option::Option::Some(field_zero_point) =
                    self.zero_point().transpose()
                {
                    f.field("zero_point", &field_zero_point);
                }
                if let ::core::option::Option::Some(field_details) = self.details().transpose() {
                    f.field("details", &field_details);
                }
                f.field("quantized_dimension", &self.quantized_dimension());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<QuantizationParametersRef<'a>> for QuantizationParameters {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: QuantizationParametersRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    min: if let ::core::option::Option::Some(min) = value.min()? {
                        ::core::option::Option::Some(min.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    max: if let ::core::option::Option::Some(max) = value.max()? {
                        ::core::option::Option::Some(max.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    scale: if let ::core::option::Option::Some(scale) = value.scale()? {
                        ::core::option::Option::Some(scale.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    zero_point: if let ::core::option::Option::Some(zero_point) =
                        value.zero_point()?
                    {
                        ::core::option::Option::Some(zero_point.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    details: if let ::core::option::Option::Some(details) = value.details()? {
                        ::core::option::Option::Some(::core::convert::TryInto::try_into(details)?)
                    } else {
                        ::core::option::Option::None
                    },
                    quantized_dimension: ::core::convert::TryInto::try_into(
                        value.quantized_dimension()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for QuantizationParametersRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for QuantizationParametersRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[QuantizationParametersRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<QuantizationParameters>>
            for QuantizationParameters
        {
            type Value = ::planus::Offset<QuantizationParameters>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<QuantizationParameters>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for QuantizationParametersRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[QuantizationParametersRef]", "read_as_root", 0)
                })
            }
        }

        ///  Only its presence matters here (sparse tensors are not mapped).
        ///
        /// Generated from these locations:
        /// * Table `SparsityParameters` in the file `schema/tflite_subset.fbs:273`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct SparsityParameters {}

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SparsityParameters {
            fn default() -> Self {
                Self {}
            }
        }

        impl SparsityParameters {
            /// Creates a [SparsityParametersBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SparsityParametersBuilder<()> {
                SparsityParametersBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(builder: &mut ::planus::Builder) -> ::planus::Offset<Self> {
                let table_writer: ::planus::table_writer::TableWriter<4> =
                    ::core::default::Default::default();
                unsafe {
                    table_writer.finish(builder, |_table_writer| {});
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SparsityParameters>> for SparsityParameters {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SparsityParameters>> for SparsityParameters {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SparsityParameters>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SparsityParameters> for SparsityParameters {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters> {
                SparsityParameters::create(builder)
            }
        }

        /// Builder for serializing an instance of the [SparsityParameters] type.
        ///
        /// Can be created using the [SparsityParameters::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SparsityParametersBuilder<State>(State);

        impl SparsityParametersBuilder<()> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SparsityParameters].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters>
            where
                Self: ::planus::WriteAsOffset<SparsityParameters>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SparsityParameters>> for SparsityParametersBuilder<()> {
            type Prepared = ::planus::Offset<SparsityParameters>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SparsityParameters>>
            for SparsityParametersBuilder<()>
        {
            type Prepared = ::planus::Offset<SparsityParameters>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SparsityParameters>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SparsityParameters> for SparsityParametersBuilder<()> {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters> {
                SparsityParameters::create(builder)
            }
        }

        /// Reference to a deserialized [SparsityParameters].
        #[derive(Copy, Clone)]
        pub struct SparsityParametersRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SparsityParametersRef<'a> {}

        impl<'a> ::core::fmt::Debug for SparsityParametersRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SparsityParametersRef");

                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SparsityParametersRef<'a>> for SparsityParameters {
            type Error = ::planus::Error;

            fn try_from(_value: SparsityParametersRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {})
            }
        }

        impl<'a> ::planus::TableRead<'a> for SparsityParametersRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SparsityParametersRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[SparsityParametersRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SparsityParameters>> for SparsityParameters {
            type Value = ::planus::Offset<SparsityParameters>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SparsityParameters>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SparsityParametersRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SparsityParametersRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Tensor` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Tensor` in the file `schema/tflite_subset.fbs:276`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct Tensor {
            /// The field `shape` in the table `Tensor`
            pub shape: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            ///  A `TensorType` value.
            pub type_: i8,
            /// The field `buffer` in the table `Tensor`
            pub buffer: u32,
            /// The field `name` in the table `Tensor`
            pub name: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `quantization` in the table `Tensor`
            pub quantization:
                ::core::option::Option<::planus::alloc::boxed::Box<self::QuantizationParameters>>,
            /// The field `is_variable` in the table `Tensor`
            pub is_variable: bool,
            /// The field `sparsity` in the table `Tensor`
            pub sparsity:
                ::core::option::Option<::planus::alloc::boxed::Box<self::SparsityParameters>>,
            /// The field `shape_signature` in the table `Tensor`
            pub shape_signature: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `has_rank` in the table `Tensor`
            pub has_rank: bool,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Tensor {
            fn default() -> Self {
                Self {
                    shape: ::core::default::Default::default(),
                    type_: 0,
                    buffer: 0,
                    name: ::core::default::Default::default(),
                    quantization: ::core::default::Default::default(),
                    is_variable: false,
                    sparsity: ::core::default::Default::default(),
                    shape_signature: ::core::default::Default::default(),
                    has_rank: false,
                }
            }
        }

        impl Tensor {
            /// Creates a [TensorBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> TensorBuilder<()> {
                TensorBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_shape: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_type_: impl ::planus::WriteAsDefault<i8, i8>,
                field_buffer: impl ::planus::WriteAsDefault<u32, u32>,
                field_name: impl ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                field_quantization: impl ::planus::WriteAsOptional<
                    ::planus::Offset<self::QuantizationParameters>,
                >,
                field_is_variable: impl ::planus::WriteAsDefault<bool, bool>,
                field_sparsity: impl ::planus::WriteAsOptional<
                    ::planus::Offset<self::SparsityParameters>,
                >,
                field_shape_signature: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_has_rank: impl ::planus::WriteAsDefault<bool, bool>,
            ) -> ::planus::Offset<Self> {
                let prepared_shape = field_shape.prepare(builder);
                let prepared_type_ = field_type_.prepare(builder, &0);
                let prepared_buffer = field_buffer.prepare(builder, &0);
                let prepared_name = field_name.prepare(builder);
                let prepared_quantization = field_quantization.prepare(builder);
                let prepared_is_variable = field_is_variable.prepare(builder, &false);
                let prepared_sparsity = field_sparsity.prepare(builder);
                let prepared_shape_signature = field_shape_signature.prepare(builder);
                let prepared_has_rank = field_has_rank.prepare(builder, &false);

                let mut table_writer: ::planus::table_writer::TableWriter<22> =
                    ::core::default::Default::default();
                if prepared_shape.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(0);
                }
                if prepared_buffer.is_some() {
                    table_writer.write_entry::<u32>(2);
                }
                if prepared_name.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(3);
                }
                if prepared_quantization.is_some() {
                    table_writer.write_entry::<::planus::Offset<self::QuantizationParameters>>(4);
                }
                if prepared_sparsity.is_some() {
                    table_writer.write_entry::<::planus::Offset<self::SparsityParameters>>(6);
                }
                if prepared_shape_signature.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(7);
                }
                if prepared_type_.is_some() {
                    table_writer.write_entry::<i8>(1);
                }
                if prepared_is_variable.is_some() {
                    table_writer.write_entry::<bool>(5);
                }
                if prepared_has_rank.is_some() {
                    table_writer.write_entry::<bool>(8);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_shape) = prepared_shape {
                            object_writer.write::<_, _, 4>(&prepared_shape);
                        }
                        if let ::core::option::Option::Some(prepared_buffer) = prepared_buffer {
                            object_writer.write::<_, _, 4>(&prepared_buffer);
                        }
                        if let ::core::option::Option::Some(prepared_name) = prepared_name {
                            object_writer.write::<_, _, 4>(&prepared_name);
                        }
                        if let ::core::option::Option::Some(prepared_quantization) =
                            prepared_quantization
                        {
                            object_writer.write::<_, _, 4>(&prepared_quantization);
                        }
                        if let ::core::option::Option::Some(prepared_sparsity) = prepared_sparsity {
                            object_writer.write::<_, _, 4>(&prepared_sparsity);
                        }
                        if let ::core::option::Option::Some(prepared_shape_signature) =
                            prepared_shape_signature
                        {
                            object_writer.write::<_, _, 4>(&prepared_shape_signature);
                        }
                        if let ::core::option::Option::Some(prepared_type_) = prepared_type_ {
                            object_writer.write::<_, _, 1>(&prepared_type_);
                        }
                        if let ::core::option::Option::Some(prepared_is_variable) =
                            prepared_is_variable
                        {
                            object_writer.write::<_, _, 1>(&prepared_is_variable);
                        }
                        if let ::core::option::Option::Some(prepared_has_rank) = prepared_has_rank {
                            object_writer.write::<_, _, 1>(&prepared_has_rank);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Tensor>> for Tensor {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Tensor>> for Tensor {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Tensor>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Tensor> for Tensor {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor> {
                Tensor::create(
                    builder,
                    &self.shape,
                    self.type_,
                    self.buffer,
                    &self.name,
                    &self.quantization,
                    self.is_variable,
                    &self.sparsity,
                    &self.shape_signature,
                    self.has_rank,
                )
            }
        }

        /// Builder for serializing an instance of the [Tensor] type.
        ///
        /// Can be created using the [Tensor::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct TensorBuilder<State>(State);

        impl TensorBuilder<()> {
            /// Setter for the [`shape` field](Tensor#structfield.shape).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shape<T0>(self, value: T0) -> TensorBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                TensorBuilder((value,))
            }

            /// Sets the [`shape` field](Tensor#structfield.shape) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shape_as_null(self) -> TensorBuilder<((),)> {
                self.shape(())
            }
        }

        impl<T0> TensorBuilder<(T0,)> {
            /// Setter for the [`type` field](Tensor#structfield.type_).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn type_<T1>(self, value: T1) -> TensorBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0,) = self.0;
                TensorBuilder((v0, value))
            }

            /// Sets the [`type` field](Tensor#structfield.type_) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn type_as_default(self) -> TensorBuilder<(T0, ::planus::DefaultValue)> {
                self.type_(::planus::DefaultValue)
            }
        }

        impl<T0, T1> TensorBuilder<(T0, T1)> {
            /// Setter for the [`buffer` field](Tensor#structfield.buffer).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffer<T2>(self, value: T2) -> TensorBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<u32, u32>,
            {
                let (v0, v1) = self.0;
                TensorBuilder((v0, v1, value))
            }

            /// Sets the [`buffer` field](Tensor#structfield.buffer) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffer_as_default(self) -> TensorBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.buffer(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> TensorBuilder<(T0, T1, T2)> {
            /// Setter for the [`name` field](Tensor#structfield.name).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name<T3>(self, value: T3) -> TensorBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0, v1, v2) = self.0;
                TensorBuilder((v0, v1, v2, value))
            }

            /// Sets the [`name` field](Tensor#structfield.name) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name_as_null(self) -> TensorBuilder<(T0, T1, T2, ())> {
                self.name(())
            }
        }

        impl<T0, T1, T2, T3> TensorBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`quantization` field](Tensor#structfield.quantization).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantization<T4>(self, value: T4) -> TensorBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<self::QuantizationParameters>>,
            {
                let (v0, v1, v2, v3) = self.0;
                TensorBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`quantization` field](Tensor#structfield.quantization) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantization_as_null(self) -> TensorBuilder<(T0, T1, T2, T3, ())> {
                self.quantization(())
            }
        }

        impl<T0, T1, T2, T3, T4> TensorBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`is_variable` field](Tensor#structfield.is_variable).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn is_variable<T5>(self, value: T5) -> TensorBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                TensorBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`is_variable` field](Tensor#structfield.is_variable) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn is_variable_as_default(
                self,
            ) -> TensorBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)> {
                self.is_variable(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> TensorBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Setter for the [`sparsity` field](Tensor#structfield.sparsity).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn sparsity<T6>(self, value: T6) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6)>
            where
                T6: ::planus::WriteAsOptional<::planus::Offset<self::SparsityParameters>>,
            {
                let (v0, v1, v2, v3, v4, v5) = self.0;
                TensorBuilder((v0, v1, v2, v3, v4, v5, value))
            }

            /// Sets the [`sparsity` field](Tensor#structfield.sparsity) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn sparsity_as_null(self) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, ())> {
                self.sparsity(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6)> {
            /// Setter for the [`shape_signature` field](Tensor#structfield.shape_signature).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shape_signature<T7>(
                self,
                value: T7,
            ) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
            where
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0, v1, v2, v3, v4, v5, v6) = self.0;
                TensorBuilder((v0, v1, v2, v3, v4, v5, v6, value))
            }

            /// Sets the [`shape_signature` field](Tensor#structfield.shape_signature) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shape_signature_as_null(
                self,
            ) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, ())> {
                self.shape_signature(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6, T7> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)> {
            /// Setter for the [`has_rank` field](Tensor#structfield.has_rank).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn has_rank<T8>(
                self,
                value: T8,
            ) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)>
            where
                T8: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0, v1, v2, v3, v4, v5, v6, v7) = self.0;
                TensorBuilder((v0, v1, v2, v3, v4, v5, v6, v7, value))
            }

            /// Sets the [`has_rank` field](Tensor#structfield.has_rank) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn has_rank_as_default(
                self,
            ) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, ::planus::DefaultValue)>
            {
                self.has_rank(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6, T7, T8> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Tensor].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor>
            where
                Self: ::planus::WriteAsOffset<Tensor>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<u32, u32>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<self::QuantizationParameters>>,
                T5: ::planus::WriteAsDefault<bool, bool>,
                T6: ::planus::WriteAsOptional<::planus::Offset<self::SparsityParameters>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T8: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAs<::planus::Offset<Tensor>>
            for TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)>
        {
            type Prepared = ::planus::Offset<Tensor>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<u32, u32>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<self::QuantizationParameters>>,
                T5: ::planus::WriteAsDefault<bool, bool>,
                T6: ::planus::WriteAsOptional<::planus::Offset<self::SparsityParameters>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T8: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOptional<::planus::Offset<Tensor>>
            for TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)>
        {
            type Prepared = ::planus::Offset<Tensor>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Tensor>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<u32, u32>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<self::QuantizationParameters>>,
                T5: ::planus::WriteAsDefault<bool, bool>,
                T6: ::planus::WriteAsOptional<::planus::Offset<self::SparsityParameters>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T8: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOffset<Tensor>
            for TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor> {
                let (v0, v1, v2, v3, v4, v5, v6, v7, v8) = &self.0;
                Tensor::create(builder, v0, v1, v2, v3, v4, v5, v6, v7, v8)
            }
        }

        /// Reference to a deserialized [Tensor].
        #[derive(Copy, Clone)]
        pub struct TensorRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> TensorRef<'a> {
            /// Getter for the [`shape` field](Tensor#structfield.shape).
            #[inline]
            pub fn shape(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(0, "Tensor", "shape")
            }

            /// Getter for the [`type` field](Tensor#structfield.type_).
            #[inline]
            pub fn type_(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(self.0.access(1, "Tensor", "type_")?.unwrap_or(0))
            }

            /// Getter for the [`buffer` field](Tensor#structfield.buffer).
            #[inline]
            pub fn buffer(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(self.0.access(2, "Tensor", "buffer")?.unwrap_or(0))
            }

            /// Getter for the [`name` field](Tensor#structfield.name).
            #[inline]
            pub fn name(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(3, "Tensor", "name")
            }

            /// Getter for the [`quantization` field](Tensor#structfield.quantization).
            #[inline]
            pub fn quantization(
                &self,
            ) -> ::planus::Result<::core::option::Option<self::QuantizationParametersRef<'a>>>
            {
                self.0.access(4, "Tensor", "quantization")
            }

            /// Getter for the [`is_variable` field](Tensor#structfield.is_variable).
            #[inline]
            pub fn is_variable(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0.access(5, "Tensor", "is_variable")?.unwrap_or(false),
                )
            }

            /// Getter for the [`sparsity` field](Tensor#structfield.sparsity).
            #[inline]
            pub fn sparsity(
                &self,
            ) -> ::planus::Result<::core::option::Option<self::SparsityParametersRef<'a>>>
            {
                self.0.access(6, "Tensor", "sparsity")
            }

            /// Getter for the [`shape_signature` field](Tensor#structfield.shape_signature).
            #[inline]
            pub fn shape_signature(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(7, "Tensor", "shape_signature")
            }

            /// Getter for the [`has_rank` field](Tensor#structfield.has_rank).
            #[inline]
            pub fn has_rank(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(self.0.access(8, "Tensor", "has_rank")?.unwrap_or(false))
            }
        }

        impl<'a> ::core::fmt::Debug for TensorRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("TensorRef");
                if let ::core::option::Option::Some(field_shape) = self.shape().transpose() {
                    f.field("shape", &field_shape);
                }
                f.field("type_", &self.type_());
                f.field("buffer", &self.buffer());
                if let ::core::option::Option::Some(field_name) = self.name().transpose() {
                    f.field("name", &field_name);
                }
                if let ::core::option::Option::Some(field_quantization) =
                    self.quantization().transpose()
                {
                    f.field("quantization", &field_quantization);
                }
                f.field("is_variable", &self.is_variable());
                if let ::core::option::Option::Some(field_sparsity) = self.sparsity().transpose() {
                    f.field("sparsity", &field_sparsity);
                }
                if let ::core::option::Option::Some(field_shape_signature) =
                    self.shape_signature().transpose()
                {
                    f.field("shape_signature", &field_shape_signature);
                }
                f.field("has_rank", &self.has_rank());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<TensorRef<'a>> for Tensor {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: TensorRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    shape: if let ::core::option::Option::Some(shape) = value.shape()? {
                        ::core::option::Option::Some(shape.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    type_: ::core::convert::TryInto::try_into(value.type_()?)?,
                    buffer: ::core::convert::TryInto::try_into(value.buffer()?)?,
                    name: value.name()?.map(::core::convert::Into::into),
                    quantization: if let ::core::option::Option::Some(quantization) =
                        value.quantization()?
                    {
                        ::core::option::Option::Some(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryInto::try_into(quantization)?,
                        ))
                    } else {
                        ::core::option::Option::None
                    },
                    is_variable: ::core::convert::TryInto::try_into(value.is_variable()?)?,
                    sparsity: if let ::core::option::Option::Some(sparsity) = value.sparsity()? {
                        ::core::option::Option::Some(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryInto::try_into(sparsity)?,
                        ))
                    } else {
                        ::core::option::Option::None
                    },
                    shape_signature: if let ::core::option::Option::Some(shape_signature) =
                        value.shape_signature()?
                    {
                        ::core::option::Option::Some(shape_signature.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    has_rank: ::core::convert::TryInto::try_into(value.has_rank()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for TensorRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for TensorRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[TensorRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Tensor>> for Tensor {
            type Value = ::planus::Offset<Tensor>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Tensor>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for TensorRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[TensorRef]", "read_as_root", 0)
                })
            }
        }

        ///  Options of operators whose options edgepipe does not read.
        ///
        /// Generated from these locations:
        /// * Table `UnreadOptions` in the file `schema/tflite_subset.fbs:290`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct UnreadOptions {}

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for UnreadOptions {
            fn default() -> Self {
                Self {}
            }
        }

        impl UnreadOptions {
            /// Creates a [UnreadOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> UnreadOptionsBuilder<()> {
                UnreadOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(builder: &mut ::planus::Builder) -> ::planus::Offset<Self> {
                let table_writer: ::planus::table_writer::TableWriter<4> =
                    ::core::default::Default::default();
                unsafe {
                    table_writer.finish(builder, |_table_writer| {});
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<UnreadOptions>> for UnreadOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<UnreadOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<UnreadOptions>> for UnreadOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<UnreadOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<UnreadOptions> for UnreadOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<UnreadOptions> {
                UnreadOptions::create(builder)
            }
        }

        /// Builder for serializing an instance of the [UnreadOptions] type.
        ///
        /// Can be created using the [UnreadOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct UnreadOptionsBuilder<State>(State);

        impl UnreadOptionsBuilder<()> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [UnreadOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<UnreadOptions>
            where
                Self: ::planus::WriteAsOffset<UnreadOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl ::planus::WriteAs<::planus::Offset<UnreadOptions>> for UnreadOptionsBuilder<()> {
            type Prepared = ::planus::Offset<UnreadOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<UnreadOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<UnreadOptions>> for UnreadOptionsBuilder<()> {
            type Prepared = ::planus::Offset<UnreadOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<UnreadOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<UnreadOptions> for UnreadOptionsBuilder<()> {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<UnreadOptions> {
                UnreadOptions::create(builder)
            }
        }

        /// Reference to a deserialized [UnreadOptions].
        #[derive(Copy, Clone)]
        pub struct UnreadOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> UnreadOptionsRef<'a> {}

        impl<'a> ::core::fmt::Debug for UnreadOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("UnreadOptionsRef");

                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<UnreadOptionsRef<'a>> for UnreadOptions {
            type Error = ::planus::Error;

            fn try_from(_value: UnreadOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {})
            }
        }

        impl<'a> ::planus::TableRead<'a> for UnreadOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for UnreadOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[UnreadOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<UnreadOptions>> for UnreadOptions {
            type Value = ::planus::Offset<UnreadOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<UnreadOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for UnreadOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[UnreadOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Conv2DOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Conv2DOptions` in the file `schema/tflite_subset.fbs:293`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct Conv2DOptions {
            /// The field `padding` in the table `Conv2DOptions`
            pub padding: i8,
            /// The field `stride_w` in the table `Conv2DOptions`
            pub stride_w: i32,
            /// The field `stride_h` in the table `Conv2DOptions`
            pub stride_h: i32,
            /// The field `fused_activation_function` in the table `Conv2DOptions`
            pub fused_activation_function: i8,
            /// The field `dilation_w_factor` in the table `Conv2DOptions`
            pub dilation_w_factor: i32,
            /// The field `dilation_h_factor` in the table `Conv2DOptions`
            pub dilation_h_factor: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Conv2DOptions {
            fn default() -> Self {
                Self {
                    padding: 0,
                    stride_w: 0,
                    stride_h: 0,
                    fused_activation_function: 0,
                    dilation_w_factor: 1,
                    dilation_h_factor: 1,
                }
            }
        }

        impl Conv2DOptions {
            /// Creates a [Conv2DOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> Conv2DOptionsBuilder<()> {
                Conv2DOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_padding: impl ::planus::WriteAsDefault<i8, i8>,
                field_stride_w: impl ::planus::WriteAsDefault<i32, i32>,
                field_stride_h: impl ::planus::WriteAsDefault<i32, i32>,
                field_fused_activation_function: impl ::planus::WriteAsDefault<i8, i8>,
                field_dilation_w_factor: impl ::planus::WriteAsDefault<i32, i32>,
                field_dilation_h_factor: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_padding = field_padding.prepare(builder, &0);
                let prepared_stride_w = field_stride_w.prepare(builder, &0);
                let prepared_stride_h = field_stride_h.prepare(builder, &0);
                let prepared_fused_activation_function =
                    field_fused_activation_function.prepare(builder, &0);
                let prepared_dilation_w_factor = field_dilation_w_factor.prepare(builder, &1);
                let prepared_dilation_h_factor = field_dilation_h_factor.prepare(builder, &1);

                let mut table_writer: ::planus::table_writer::TableWriter<16> =
                    ::core::default::Default::default();
                if prepared_stride_w.is_some() {
                    table_writer.write_entry::<i32>(1);
                }
                if prepared_stride_h.is_some() {
                    table_writer.write_entry::<i32>(2);
                }
                if prepared_dilation_w_factor.is_some() {
                    table_writer.write_entry::<i32>(4);
                }
                if prepared_dilation_h_factor.is_some() {
                    table_writer.write_entry::<i32>(5);
                }
                if prepared_padding.is_some() {
                    table_writer.write_entry::<i8>(0);
                }
                if prepared_fused_activation_function.is_some() {
                    table_writer.write_entry::<i8>(3);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_stride_w) = prepared_stride_w {
                            object_writer.write::<_, _, 4>(&prepared_stride_w);
                        }
                        if let ::core::option::Option::Some(prepared_stride_h) = prepared_stride_h {
                            object_writer.write::<_, _, 4>(&prepared_stride_h);
                        }
                        if let ::core::option::Option::Some(prepared_dilation_w_factor) =
                            prepared_dilation_w_factor
                        {
                            object_writer.write::<_, _, 4>(&prepared_dilation_w_factor);
                        }
                        if let ::core::option::Option::Some(prepared_dilation_h_factor) =
                            prepared_dilation_h_factor
                        {
                            object_writer.write::<_, _, 4>(&prepared_dilation_h_factor);
                        }
                        if let ::core::option::Option::Some(prepared_padding) = prepared_padding {
                            object_writer.write::<_, _, 1>(&prepared_padding);
                        }
                        if let ::core::option::Option::Some(prepared_fused_activation_function) =
                            prepared_fused_activation_function
                        {
                            object_writer.write::<_, _, 1>(&prepared_fused_activation_function);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Conv2DOptions>> for Conv2DOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Conv2DOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Conv2DOptions>> for Conv2DOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Conv2DOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Conv2DOptions> for Conv2DOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Conv2DOptions> {
                Conv2DOptions::create(
                    builder,
                    self.padding,
                    self.stride_w,
                    self.stride_h,
                    self.fused_activation_function,
                    self.dilation_w_factor,
                    self.dilation_h_factor,
                )
            }
        }

        /// Builder for serializing an instance of the [Conv2DOptions] type.
        ///
        /// Can be created using the [Conv2DOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct Conv2DOptionsBuilder<State>(State);

        impl Conv2DOptionsBuilder<()> {
            /// Setter for the [`padding` field](Conv2DOptions#structfield.padding).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn padding<T0>(self, value: T0) -> Conv2DOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i8, i8>,
            {
                Conv2DOptionsBuilder((value,))
            }

            /// Sets the [`padding` field](Conv2DOptions#structfield.padding) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn padding_as_default(self) -> Conv2DOptionsBuilder<(::planus::DefaultValue,)> {
                self.padding(::planus::DefaultValue)
            }
        }

        impl<T0> Conv2DOptionsBuilder<(T0,)> {
            /// Setter for the [`stride_w` field](Conv2DOptions#structfield.stride_w).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_w<T1>(self, value: T1) -> Conv2DOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0,) = self.0;
                Conv2DOptionsBuilder((v0, value))
            }

            /// Sets the [`stride_w` field](Conv2DOptions#structfield.stride_w) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_w_as_default(self) -> Conv2DOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.stride_w(::planus::DefaultValue)
            }
        }

        impl<T0, T1> Conv2DOptionsBuilder<(T0, T1)> {
            /// Setter for the [`stride_h` field](Conv2DOptions#structfield.stride_h).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_h<T2>(self, value: T2) -> Conv2DOptionsBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1) = self.0;
                Conv2DOptionsBuilder((v0, v1, value))
            }

            /// Sets the [`stride_h` field](Conv2DOptions#structfield.stride_h) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_h_as_default(
                self,
            ) -> Conv2DOptionsBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.stride_h(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> Conv2DOptionsBuilder<(T0, T1, T2)> {
            /// Setter for the [`fused_activation_function` field](Conv2DOptions#structfield.fused_activation_function).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function<T3>(
                self,
                value: T3,
            ) -> Conv2DOptionsBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0, v1, v2) = self.0;
                Conv2DOptionsBuilder((v0, v1, v2, value))
            }

            /// Sets the [`fused_activation_function` field](Conv2DOptions#structfield.fused_activation_function) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function_as_default(
                self,
            ) -> Conv2DOptionsBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.fused_activation_function(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> Conv2DOptionsBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`dilation_w_factor` field](Conv2DOptions#structfield.dilation_w_factor).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn dilation_w_factor<T4>(
                self,
                value: T4,
            ) -> Conv2DOptionsBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3) = self.0;
                Conv2DOptionsBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`dilation_w_factor` field](Conv2DOptions#structfield.dilation_w_factor) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn dilation_w_factor_as_default(
                self,
            ) -> Conv2DOptionsBuilder<(T0, T1, T2, T3, ::planus::DefaultValue)> {
                self.dilation_w_factor(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4> Conv2DOptionsBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`dilation_h_factor` field](Conv2DOptions#structfield.dilation_h_factor).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn dilation_h_factor<T5>(
                self,
                value: T5,
            ) -> Conv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                Conv2DOptionsBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`dilation_h_factor` field](Conv2DOptions#structfield.dilation_h_factor) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn dilation_h_factor_as_default(
                self,
            ) -> Conv2DOptionsBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)> {
                self.dilation_h_factor(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> Conv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Conv2DOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Conv2DOptions>
            where
                Self: ::planus::WriteAsOffset<Conv2DOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i8, i8>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAs<::planus::Offset<Conv2DOptions>>
            for Conv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<Conv2DOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Conv2DOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i8, i8>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOptional<::planus::Offset<Conv2DOptions>>
            for Conv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<Conv2DOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Conv2DOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i8, i8>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOffset<Conv2DOptions>
            for Conv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Conv2DOptions> {
                let (v0, v1, v2, v3, v4, v5) = &self.0;
                Conv2DOptions::create(builder, v0, v1, v2, v3, v4, v5)
            }
        }

        /// Reference to a deserialized [Conv2DOptions].
        #[derive(Copy, Clone)]
        pub struct Conv2DOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> Conv2DOptionsRef<'a> {
            /// Getter for the [`padding` field](Conv2DOptions#structfield.padding).
            #[inline]
            pub fn padding(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0.access(0, "Conv2DOptions", "padding")?.unwrap_or(0),
                )
            }

            /// Getter for the [`stride_w` field](Conv2DOptions#structfield.stride_w).
            #[inline]
            pub fn stride_w(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(1, "Conv2DOptions", "stride_w")?.unwrap_or(0),
                )
            }

            /// Getter for the [`stride_h` field](Conv2DOptions#structfield.stride_h).
            #[inline]
            pub fn stride_h(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(2, "Conv2DOptions", "stride_h")?.unwrap_or(0),
                )
            }

            /// Getter for the [`fused_activation_function` field](Conv2DOptions#structfield.fused_activation_function).
            #[inline]
            pub fn fused_activation_function(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "Conv2DOptions", "fused_activation_function")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`dilation_w_factor` field](Conv2DOptions#structfield.dilation_w_factor).
            #[inline]
            pub fn dilation_w_factor(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(4, "Conv2DOptions", "dilation_w_factor")?
                        .unwrap_or(1),
                )
            }

            /// Getter for the [`dilation_h_factor` field](Conv2DOptions#structfield.dilation_h_factor).
            #[inline]
            pub fn dilation_h_factor(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(5, "Conv2DOptions", "dilation_h_factor")?
                        .unwrap_or(1),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for Conv2DOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("Conv2DOptionsRef");
                f.field("padding", &self.padding());
                f.field("stride_w", &self.stride_w());
                f.field("stride_h", &self.stride_h());
                f.field(
                    "fused_activation_function",
                    &self.fused_activation_function(),
                );
                f.field("dilation_w_factor", &self.dilation_w_factor());
                f.field("dilation_h_factor", &self.dilation_h_factor());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<Conv2DOptionsRef<'a>> for Conv2DOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: Conv2DOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    padding: ::core::convert::TryInto::try_into(value.padding()?)?,
                    stride_w: ::core::convert::TryInto::try_into(value.stride_w()?)?,
                    stride_h: ::core::convert::TryInto::try_into(value.stride_h()?)?,
                    fused_activation_function: ::core::convert::TryInto::try_into(
                        value.fused_activation_function()?,
                    )?,
                    dilation_w_factor: ::core::convert::TryInto::try_into(
                        value.dilation_w_factor()?,
                    )?,
                    dilation_h_factor: ::core::convert::TryInto::try_into(
                        value.dilation_h_factor()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for Conv2DOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for Conv2DOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[Conv2DOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Conv2DOptions>> for Conv2DOptions {
            type Value = ::planus::Offset<Conv2DOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Conv2DOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for Conv2DOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[Conv2DOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Pool2DOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Pool2DOptions` in the file `schema/tflite_subset.fbs:302`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct Pool2DOptions {
            /// The field `padding` in the table `Pool2DOptions`
            pub padding: i8,
            /// The field `stride_w` in the table `Pool2DOptions`
            pub stride_w: i32,
            /// The field `stride_h` in the table `Pool2DOptions`
            pub stride_h: i32,
            /// The field `filter_width` in the table `Pool2DOptions`
            pub filter_width: i32,
            /// The field `filter_height` in the table `Pool2DOptions`
            pub filter_height: i32,
            /// The field `fused_activation_function` in the table `Pool2DOptions`
            pub fused_activation_function: i8,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Pool2DOptions {
            fn default() -> Self {
                Self {
                    padding: 0,
                    stride_w: 0,
                    stride_h: 0,
                    filter_width: 0,
                    filter_height: 0,
                    fused_activation_function: 0,
                }
            }
        }

        impl Pool2DOptions {
            /// Creates a [Pool2DOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> Pool2DOptionsBuilder<()> {
                Pool2DOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_padding: impl ::planus::WriteAsDefault<i8, i8>,
                field_stride_w: impl ::planus::WriteAsDefault<i32, i32>,
                field_stride_h: impl ::planus::WriteAsDefault<i32, i32>,
                field_filter_width: impl ::planus::WriteAsDefault<i32, i32>,
                field_filter_height: impl ::planus::WriteAsDefault<i32, i32>,
                field_fused_activation_function: impl ::planus::WriteAsDefault<i8, i8>,
            ) -> ::planus::Offset<Self> {
                let prepared_padding = field_padding.prepare(builder, &0);
                let prepared_stride_w = field_stride_w.prepare(builder, &0);
                let prepared_stride_h = field_stride_h.prepare(builder, &0);
                let prepared_filter_width = field_filter_width.prepare(builder, &0);
                let prepared_filter_height = field_filter_height.prepare(builder, &0);
                let prepared_fused_activation_function =
                    field_fused_activation_function.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<16> =
                    ::core::default::Default::default();
                if prepared_stride_w.is_some() {
                    table_writer.write_entry::<i32>(1);
                }
                if prepared_stride_h.is_some() {
                    table_writer.write_entry::<i32>(2);
                }
                if prepared_filter_width.is_some() {
                    table_writer.write_entry::<i32>(3);
                }
                if prepared_filter_height.is_some() {
                    table_writer.write_entry::<i32>(4);
                }
                if prepared_padding.is_some() {
                    table_writer.write_entry::<i8>(0);
                }
                if prepared_fused_activation_function.is_some() {
                    table_writer.write_entry::<i8>(5);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_stride_w) = prepared_stride_w {
                            object_writer.write::<_, _, 4>(&prepared_stride_w);
                        }
                        if let ::core::option::Option::Some(prepared_stride_h) = prepared_stride_h {
                            object_writer.write::<_, _, 4>(&prepared_stride_h);
                        }
                        if let ::core::option::Option::Some(prepared_filter_width) =
                            prepared_filter_width
                        {
                            object_writer.write::<_, _, 4>(&prepared_filter_width);
                        }
                        if let ::core::option::Option::Some(prepared_filter_height) =
                            prepared_filter_height
                        {
                            object_writer.write::<_, _, 4>(&prepared_filter_height);
                        }
                        if let ::core::option::Option::Some(prepared_padding) = prepared_padding {
                            object_writer.write::<_, _, 1>(&prepared_padding);
                        }
                        if let ::core::option::Option::Some(prepared_fused_activation_function) =
                            prepared_fused_activation_function
                        {
                            object_writer.write::<_, _, 1>(&prepared_fused_activation_function);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Pool2DOptions>> for Pool2DOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Pool2DOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Pool2DOptions>> for Pool2DOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Pool2DOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Pool2DOptions> for Pool2DOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Pool2DOptions> {
                Pool2DOptions::create(
                    builder,
                    self.padding,
                    self.stride_w,
                    self.stride_h,
                    self.filter_width,
                    self.filter_height,
                    self.fused_activation_function,
                )
            }
        }

        /// Builder for serializing an instance of the [Pool2DOptions] type.
        ///
        /// Can be created using the [Pool2DOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct Pool2DOptionsBuilder<State>(State);

        impl Pool2DOptionsBuilder<()> {
            /// Setter for the [`padding` field](Pool2DOptions#structfield.padding).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn padding<T0>(self, value: T0) -> Pool2DOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i8, i8>,
            {
                Pool2DOptionsBuilder((value,))
            }

            /// Sets the [`padding` field](Pool2DOptions#structfield.padding) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn padding_as_default(self) -> Pool2DOptionsBuilder<(::planus::DefaultValue,)> {
                self.padding(::planus::DefaultValue)
            }
        }

        impl<T0> Pool2DOptionsBuilder<(T0,)> {
            /// Setter for the [`stride_w` field](Pool2DOptions#structfield.stride_w).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_w<T1>(self, value: T1) -> Pool2DOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0,) = self.0;
                Pool2DOptionsBuilder((v0, value))
            }

            /// Sets the [`stride_w` field](Pool2DOptions#structfield.stride_w) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_w_as_default(self) -> Pool2DOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.stride_w(::planus::DefaultValue)
            }
        }

        impl<T0, T1> Pool2DOptionsBuilder<(T0, T1)> {
            /// Setter for the [`stride_h` field](Pool2DOptions#structfield.stride_h).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_h<T2>(self, value: T2) -> Pool2DOptionsBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1) = self.0;
                Pool2DOptionsBuilder((v0, v1, value))
            }

            /// Sets the [`stride_h` field](Pool2DOptions#structfield.stride_h) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_h_as_default(
                self,
            ) -> Pool2DOptionsBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.stride_h(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> Pool2DOptionsBuilder<(T0, T1, T2)> {
            /// Setter for the [`filter_width` field](Pool2DOptions#structfield.filter_width).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn filter_width<T3>(self, value: T3) -> Pool2DOptionsBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2) = self.0;
                Pool2DOptionsBuilder((v0, v1, v2, value))
            }

            /// Sets the [`filter_width` field](Pool2DOptions#structfield.filter_width) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn filter_width_as_default(
                self,
            ) -> Pool2DOptionsBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.filter_width(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> Pool2DOptionsBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`filter_height` field](Pool2DOptions#structfield.filter_height).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn filter_height<T4>(self, value: T4) -> Pool2DOptionsBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3) = self.0;
                Pool2DOptionsBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`filter_height` field](Pool2DOptions#structfield.filter_height) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn filter_height_as_default(
                self,
            ) -> Pool2DOptionsBuilder<(T0, T1, T2, T3, ::planus::DefaultValue)> {
                self.filter_height(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4> Pool2DOptionsBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`fused_activation_function` field](Pool2DOptions#structfield.fused_activation_function).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function<T5>(
                self,
                value: T5,
            ) -> Pool2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                Pool2DOptionsBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`fused_activation_function` field](Pool2DOptions#structfield.fused_activation_function) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function_as_default(
                self,
            ) -> Pool2DOptionsBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)> {
                self.fused_activation_function(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> Pool2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Pool2DOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Pool2DOptions>
            where
                Self: ::planus::WriteAsOffset<Pool2DOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAs<::planus::Offset<Pool2DOptions>>
            for Pool2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<Pool2DOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Pool2DOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAsOptional<::planus::Offset<Pool2DOptions>>
            for Pool2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<Pool2DOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Pool2DOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAsOffset<Pool2DOptions>
            for Pool2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Pool2DOptions> {
                let (v0, v1, v2, v3, v4, v5) = &self.0;
                Pool2DOptions::create(builder, v0, v1, v2, v3, v4, v5)
            }
        }

        /// Reference to a deserialized [Pool2DOptions].
        #[derive(Copy, Clone)]
        pub struct Pool2DOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> Pool2DOptionsRef<'a> {
            /// Getter for the [`padding` field](Pool2DOptions#structfield.padding).
            #[inline]
            pub fn padding(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0.access(0, "Pool2DOptions", "padding")?.unwrap_or(0),
                )
            }

            /// Getter for the [`stride_w` field](Pool2DOptions#structfield.stride_w).
            #[inline]
            pub fn stride_w(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(1, "Pool2DOptions", "stride_w")?.unwrap_or(0),
                )
            }

            /// Getter for the [`stride_h` field](Pool2DOptions#structfield.stride_h).
            #[inline]
            pub fn stride_h(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(2, "Pool2DOptions", "stride_h")?.unwrap_or(0),
                )
            }

            /// Getter for the [`filter_width` field](Pool2DOptions#structfield.filter_width).
            #[inline]
            pub fn filter_width(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "Pool2DOptions", "filter_width")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`filter_height` field](Pool2DOptions#structfield.filter_height).
            #[inline]
            pub fn filter_height(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(4, "Pool2DOptions", "filter_height")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`fused_activation_function` field](Pool2DOptions#structfield.fused_activation_function).
            #[inline]
            pub fn fused_activation_function(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(5, "Pool2DOptions", "fused_activation_function")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for Pool2DOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("Pool2DOptionsRef");
                f.field("padding", &self.padding());
                f.field("stride_w", &self.stride_w());
                f.field("stride_h", &self.stride_h());
                f.field("filter_width", &self.filter_width());
                f.field("filter_height", &self.filter_height());
                f.field(
                    "fused_activation_function",
                    &self.fused_activation_function(),
                );
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<Pool2DOptionsRef<'a>> for Pool2DOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: Pool2DOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    padding: ::core::convert::TryInto::try_into(value.padding()?)?,
                    stride_w: ::core::convert::TryInto::try_into(value.stride_w()?)?,
                    stride_h: ::core::convert::TryInto::try_into(value.stride_h()?)?,
                    filter_width: ::core::convert::TryInto::try_into(value.filter_width()?)?,
                    filter_height: ::core::convert::TryInto::try_into(value.filter_height()?)?,
                    fused_activation_function: ::core::convert::TryInto::try_into(
                        value.fused_activation_function()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for Pool2DOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for Pool2DOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[Pool2DOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Pool2DOptions>> for Pool2DOptions {
            type Value = ::planus::Offset<Pool2DOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Pool2DOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for Pool2DOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[Pool2DOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `DepthwiseConv2DOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `DepthwiseConv2DOptions` in the file `schema/tflite_subset.fbs:311`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct DepthwiseConv2DOptions {
            /// The field `padding` in the table `DepthwiseConv2DOptions`
            pub padding: i8,
            /// The field `stride_w` in the table `DepthwiseConv2DOptions`
            pub stride_w: i32,
            /// The field `stride_h` in the table `DepthwiseConv2DOptions`
            pub stride_h: i32,
            /// The field `depth_multiplier` in the table `DepthwiseConv2DOptions`
            pub depth_multiplier: i32,
            /// The field `fused_activation_function` in the table `DepthwiseConv2DOptions`
            pub fused_activation_function: i8,
            /// The field `dilation_w_factor` in the table `DepthwiseConv2DOptions`
            pub dilation_w_factor: i32,
            /// The field `dilation_h_factor` in the table `DepthwiseConv2DOptions`
            pub dilation_h_factor: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for DepthwiseConv2DOptions {
            fn default() -> Self {
                Self {
                    padding: 0,
                    stride_w: 0,
                    stride_h: 0,
                    depth_multiplier: 0,
                    fused_activation_function: 0,
                    dilation_w_factor: 1,
                    dilation_h_factor: 1,
                }
            }
        }

        impl DepthwiseConv2DOptions {
            /// Creates a [DepthwiseConv2DOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> DepthwiseConv2DOptionsBuilder<()> {
                DepthwiseConv2DOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_padding: impl ::planus::WriteAsDefault<i8, i8>,
                field_stride_w: impl ::planus::WriteAsDefault<i32, i32>,
                field_stride_h: impl ::planus::WriteAsDefault<i32, i32>,
                field_depth_multiplier: impl ::planus::WriteAsDefault<i32, i32>,
                field_fused_activation_function: impl ::planus::WriteAsDefault<i8, i8>,
                field_dilation_w_factor: impl ::planus::WriteAsDefault<i32, i32>,
                field_dilation_h_factor: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_padding = field_padding.prepare(builder, &0);
                let prepared_stride_w = field_stride_w.prepare(builder, &0);
                let prepared_stride_h = field_stride_h.prepare(builder, &0);
                let prepared_depth_multiplier = field_depth_multiplier.prepare(builder, &0);
                let prepared_fused_activation_function =
                    field_fused_activation_function.prepare(builder, &0);
                let prepared_dilation_w_factor = field_dilation_w_factor.prepare(builder, &1);
                let prepared_dilation_h_factor = field_dilation_h_factor.prepare(builder, &1);

                let mut table_writer: ::planus::table_writer::TableWriter<18> =
                    ::core::default::Default::default();
                if prepared_stride_w.is_some() {
                    table_writer.write_entry::<i32>(1);
                }
                if prepared_stride_h.is_some() {
                    table_writer.write_entry::<i32>(2);
                }
                if prepared_depth_multiplier.is_some() {
                    table_writer.write_entry::<i32>(3);
                }
                if prepared_dilation_w_factor.is_some() {
                    table_writer.write_entry::<i32>(5);
                }
                if prepared_dilation_h_factor.is_some() {
                    table_writer.write_entry::<i32>(6);
                }
                if prepared_padding.is_some() {
                    table_writer.write_entry::<i8>(0);
                }
                if prepared_fused_activation_function.is_some() {
                    table_writer.write_entry::<i8>(4);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_stride_w) = prepared_stride_w {
                            object_writer.write::<_, _, 4>(&prepared_stride_w);
                        }
                        if let ::core::option::Option::Some(prepared_stride_h) = prepared_stride_h {
                            object_writer.write::<_, _, 4>(&prepared_stride_h);
                        }
                        if let ::core::option::Option::Some(prepared_depth_multiplier) =
                            prepared_depth_multiplier
                        {
                            object_writer.write::<_, _, 4>(&prepared_depth_multiplier);
                        }
                        if let ::core::option::Option::Some(prepared_dilation_w_factor) =
                            prepared_dilation_w_factor
                        {
                            object_writer.write::<_, _, 4>(&prepared_dilation_w_factor);
                        }
                        if let ::core::option::Option::Some(prepared_dilation_h_factor) =
                            prepared_dilation_h_factor
                        {
                            object_writer.write::<_, _, 4>(&prepared_dilation_h_factor);
                        }
                        if let ::core::option::Option::Some(prepared_padding) = prepared_padding {
                            object_writer.write::<_, _, 1>(&prepared_padding);
                        }
                        if let ::core::option::Option::Some(prepared_fused_activation_function) =
                            prepared_fused_activation_function
                        {
                            object_writer.write::<_, _, 1>(&prepared_fused_activation_function);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<DepthwiseConv2DOptions>> for DepthwiseConv2DOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<DepthwiseConv2DOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<DepthwiseConv2DOptions>>
            for DepthwiseConv2DOptions
        {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<DepthwiseConv2DOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<DepthwiseConv2DOptions> for DepthwiseConv2DOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<DepthwiseConv2DOptions> {
                DepthwiseConv2DOptions::create(
                    builder,
                    self.padding,
                    self.stride_w,
                    self.stride_h,
                    self.depth_multiplier,
                    self.fused_activation_function,
                    self.dilation_w_factor,
                    self.dilation_h_factor,
                )
            }
        }

        /// Builder for serializing an instance of the [DepthwiseConv2DOptions] type.
        ///
        /// Can be created using the [DepthwiseConv2DOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct DepthwiseConv2DOptionsBuilder<State>(State);

        impl DepthwiseConv2DOptionsBuilder<()> {
            /// Setter for the [`padding` field](DepthwiseConv2DOptions#structfield.padding).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn padding<T0>(self, value: T0) -> DepthwiseConv2DOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i8, i8>,
            {
                DepthwiseConv2DOptionsBuilder((value,))
            }

            /// Sets the [`padding` field](DepthwiseConv2DOptions#structfield.padding) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn padding_as_default(
                self,
            ) -> DepthwiseConv2DOptionsBuilder<(::planus::DefaultValue,)> {
                self.padding(::planus::DefaultValue)
            }
        }

        impl<T0> DepthwiseConv2DOptionsBuilder<(T0,)> {
            /// Setter for the [`stride_w` field](DepthwiseConv2DOptions#structfield.stride_w).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_w<T1>(self, value: T1) -> DepthwiseConv2DOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0,) = self.0;
                DepthwiseConv2DOptionsBuilder((v0, value))
            }

            /// Sets the [`stride_w` field](DepthwiseConv2DOptions#structfield.stride_w) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_w_as_default(
                self,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.stride_w(::planus::DefaultValue)
            }
        }

        impl<T0, T1> DepthwiseConv2DOptionsBuilder<(T0, T1)> {
            /// Setter for the [`stride_h` field](DepthwiseConv2DOptions#structfield.stride_h).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_h<T2>(self, value: T2) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1) = self.0;
                DepthwiseConv2DOptionsBuilder((v0, v1, value))
            }

            /// Sets the [`stride_h` field](DepthwiseConv2DOptions#structfield.stride_h) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_h_as_default(
                self,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.stride_h(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> DepthwiseConv2DOptionsBuilder<(T0, T1, T2)> {
            /// Setter for the [`depth_multiplier` field](DepthwiseConv2DOptions#structfield.depth_multiplier).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn depth_multiplier<T3>(
                self,
                value: T3,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2) = self.0;
                DepthwiseConv2DOptionsBuilder((v0, v1, v2, value))
            }

            /// Sets the [`depth_multiplier` field](DepthwiseConv2DOptions#structfield.depth_multiplier) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn depth_multiplier_as_default(
                self,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.depth_multiplier(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`fused_activation_function` field](DepthwiseConv2DOptions#structfield.fused_activation_function).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function<T4>(
                self,
                value: T4,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0, v1, v2, v3) = self.0;
                DepthwiseConv2DOptionsBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`fused_activation_function` field](DepthwiseConv2DOptions#structfield.fused_activation_function) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function_as_default(
                self,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, ::planus::DefaultValue)>
            {
                self.fused_activation_function(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`dilation_w_factor` field](DepthwiseConv2DOptions#structfield.dilation_w_factor).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn dilation_w_factor<T5>(
                self,
                value: T5,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                DepthwiseConv2DOptionsBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`dilation_w_factor` field](DepthwiseConv2DOptions#structfield.dilation_w_factor) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn dilation_w_factor_as_default(
                self,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)>
            {
                self.dilation_w_factor(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Setter for the [`dilation_h_factor` field](DepthwiseConv2DOptions#structfield.dilation_h_factor).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn dilation_h_factor<T6>(
                self,
                value: T6,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5, T6)>
            where
                T6: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3, v4, v5) = self.0;
                DepthwiseConv2DOptionsBuilder((v0, v1, v2, v3, v4, v5, value))
            }

            /// Sets the [`dilation_h_factor` field](DepthwiseConv2DOptions#structfield.dilation_h_factor) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn dilation_h_factor_as_default(
                self,
            ) -> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5, ::planus::DefaultValue)>
            {
                self.dilation_h_factor(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6> DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5, T6)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [DepthwiseConv2DOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<DepthwiseConv2DOptions>
            where
                Self: ::planus::WriteAsOffset<DepthwiseConv2DOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i8, i8>,
                T5: ::planus::WriteAsDefault<i32, i32>,
                T6: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAs<::planus::Offset<DepthwiseConv2DOptions>>
            for DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5, T6)>
        {
            type Prepared = ::planus::Offset<DepthwiseConv2DOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<DepthwiseConv2DOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i8, i8>,
                T5: ::planus::WriteAsDefault<i32, i32>,
                T6: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOptional<::planus::Offset<DepthwiseConv2DOptions>>
            for DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5, T6)>
        {
            type Prepared = ::planus::Offset<DepthwiseConv2DOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<DepthwiseConv2DOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i8, i8>,
                T5: ::planus::WriteAsDefault<i32, i32>,
                T6: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOffset<DepthwiseConv2DOptions>
            for DepthwiseConv2DOptionsBuilder<(T0, T1, T2, T3, T4, T5, T6)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<DepthwiseConv2DOptions> {
                let (v0, v1, v2, v3, v4, v5, v6) = &self.0;
                DepthwiseConv2DOptions::create(builder, v0, v1, v2, v3, v4, v5, v6)
            }
        }

        /// Reference to a deserialized [DepthwiseConv2DOptions].
        #[derive(Copy, Clone)]
        pub struct DepthwiseConv2DOptionsRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> DepthwiseConv2DOptionsRef<'a> {
            /// Getter for the [`padding` field](DepthwiseConv2DOptions#structfield.padding).
            #[inline]
            pub fn padding(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "DepthwiseConv2DOptions", "padding")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`stride_w` field](DepthwiseConv2DOptions#structfield.stride_w).
            #[inline]
            pub fn stride_w(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(1, "DepthwiseConv2DOptions", "stride_w")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`stride_h` field](DepthwiseConv2DOptions#structfield.stride_h).
            #[inline]
            pub fn stride_h(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(2, "DepthwiseConv2DOptions", "stride_h")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`depth_multiplier` field](DepthwiseConv2DOptions#structfield.depth_multiplier).
            #[inline]
            pub fn depth_multiplier(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "DepthwiseConv2DOptions", "depth_multiplier")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`fused_activation_function` field](DepthwiseConv2DOptions#structfield.fused_activation_function).
            #[inline]
            pub fn fused_activation_function(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(4, "DepthwiseConv2DOptions", "fused_activation_function")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`dilation_w_factor` field](DepthwiseConv2DOptions#structfield.dilation_w_factor).
            #[inline]
            pub fn dilation_w_factor(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(5, "DepthwiseConv2DOptions", "dilation_w_factor")?
                        .unwrap_or(1),
                )
            }

            /// Getter for the [`dilation_h_factor` field](DepthwiseConv2DOptions#structfield.dilation_h_factor).
            #[inline]
            pub fn dilation_h_factor(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(6, "DepthwiseConv2DOptions", "dilation_h_factor")?
                        .unwrap_or(1),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for DepthwiseConv2DOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("DepthwiseConv2DOptionsRef");
                f.field("padding", &self.padding());
                f.field("stride_w", &self.stride_w());
                f.field("stride_h", &self.stride_h());
                f.field("depth_multiplier", &self.depth_multiplier());
                f.field(
                    "fused_activation_function",
                    &self.fused_activation_function(),
                );
                f.field("dilation_w_factor", &self.dilation_w_factor());
                f.field("dilation_h_factor", &self.dilation_h_factor());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<DepthwiseConv2DOptionsRef<'a>> for DepthwiseConv2DOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: DepthwiseConv2DOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    padding: ::core::convert::TryInto::try_into(value.padding()?)?,
                    stride_w: ::core::convert::TryInto::try_into(value.stride_w()?)?,
                    stride_h: ::core::convert::TryInto::try_into(value.stride_h()?)?,
                    depth_multiplier: ::core::convert::TryInto::try_into(
                        value.depth_multiplier()?,
                    )?,
                    fused_activation_function: ::core::convert::TryInto::try_into(
                        value.fused_activation_function()?,
                    )?,
                    dilation_w_factor: ::core::convert::TryInto::try_into(
                        value.dilation_w_factor()?,
                    )?,
                    dilation_h_factor: ::core::convert::TryInto::try_into(
                        value.dilation_h_factor()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for DepthwiseConv2DOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for DepthwiseConv2DOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[DepthwiseConv2DOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<DepthwiseConv2DOptions>>
            for DepthwiseConv2DOptions
        {
            type Value = ::planus::Offset<DepthwiseConv2DOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<DepthwiseConv2DOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for DepthwiseConv2DOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[DepthwiseConv2DOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `FullyConnectedOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `FullyConnectedOptions` in the file `schema/tflite_subset.fbs:321`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct FullyConnectedOptions {
            /// The field `fused_activation_function` in the table `FullyConnectedOptions`
            pub fused_activation_function: i8,
            /// The field `weights_format` in the table `FullyConnectedOptions`
            pub weights_format: i8,
            /// The field `keep_num_dims` in the table `FullyConnectedOptions`
            pub keep_num_dims: bool,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for FullyConnectedOptions {
            fn default() -> Self {
                Self {
                    fused_activation_function: 0,
                    weights_format: 0,
                    keep_num_dims: false,
                }
            }
        }

        impl FullyConnectedOptions {
            /// Creates a [FullyConnectedOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> FullyConnectedOptionsBuilder<()> {
                FullyConnectedOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_fused_activation_function: impl ::planus::WriteAsDefault<i8, i8>,
                field_weights_format: impl ::planus::WriteAsDefault<i8, i8>,
                field_keep_num_dims: impl ::planus::WriteAsDefault<bool, bool>,
            ) -> ::planus::Offset<Self> {
                let prepared_fused_activation_function =
                    field_fused_activation_function.prepare(builder, &0);
                let prepared_weights_format = field_weights_format.prepare(builder, &0);
                let prepared_keep_num_dims = field_keep_num_dims.prepare(builder, &false);

                let mut table_writer: ::planus::table_writer::TableWriter<10> =
                    ::core::default::Default::default();
                if prepared_fused_activation_function.is_some() {
                    table_writer.write_entry::<i8>(0);
                }
                if prepared_weights_format.is_some() {
                    table_writer.write_entry::<i8>(1);
                }
                if prepared_keep_num_dims.is_some() {
                    table_writer.write_entry::<bool>(2);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_fused_activation_function) =
                            prepared_fused_activation_function
                        {
                            object_writer.write::<_, _, 1>(&prepared_fused_activation_function);
                        }
                        if let ::core::option::Option::Some(prepared_weights_format) =
                            prepared_weights_format
                        {
                            object_writer.write::<_, _, 1>(&prepared_weights_format);
                        }
                        if let ::core::option::Option::Some(prepared_keep_num_dims) =
                            prepared_keep_num_dims
                        {
                            object_writer.write::<_, _, 1>(&prepared_keep_num_dims);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<FullyConnectedOptions>> for FullyConnectedOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<FullyConnectedOptions>> for FullyConnectedOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<FullyConnectedOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<FullyConnectedOptions> for FullyConnectedOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions> {
                FullyConnectedOptions::create(
                    builder,
                    self.fused_activation_function,
                    self.weights_format,
                    self.keep_num_dims,
                )
            }
        }

        /// Builder for serializing an instance of the [FullyConnectedOptions] type.
        ///
        /// Can be created using the [FullyConnectedOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct FullyConnectedOptionsBuilder<State>(State);

        impl FullyConnectedOptionsBuilder<()> {
            /// Setter for the [`fused_activation_function` field](FullyConnectedOptions#structfield.fused_activation_function).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function<T0>(
                self,
                value: T0,
            ) -> FullyConnectedOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i8, i8>,
            {
                FullyConnectedOptionsBuilder((value,))
            }

            /// Sets the [`fused_activation_function` field](FullyConnectedOptions#structfield.fused_activation_function) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function_as_default(
                self,
            ) -> FullyConnectedOptionsBuilder<(::planus::DefaultValue,)> {
                self.fused_activation_function(::planus::DefaultValue)
            }
        }

        impl<T0> FullyConnectedOptionsBuilder<(T0,)> {
            /// Setter for the [`weights_format` field](FullyConnectedOptions#structfield.weights_format).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn weights_format<T1>(self, value: T1) -> FullyConnectedOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0,) = self.0;
                FullyConnectedOptionsBuilder((v0, value))
            }

            /// Sets the [`weights_format` field](FullyConnectedOptions#structfield.weights_format) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn weights_format_as_default(
                self,
            ) -> FullyConnectedOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.weights_format(::planus::DefaultValue)
            }
        }

        impl<T0, T1> FullyConnectedOptionsBuilder<(T0, T1)> {
            /// Setter for the [`keep_num_dims` field](FullyConnectedOptions#structfield.keep_num_dims).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn keep_num_dims<T2>(self, value: T2) -> FullyConnectedOptionsBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0, v1) = self.0;
                FullyConnectedOptionsBuilder((v0, v1, value))
            }

            /// Sets the [`keep_num_dims` field](FullyConnectedOptions#structfield.keep_num_dims) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn keep_num_dims_as_default(
                self,
            ) -> FullyConnectedOptionsBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.keep_num_dims(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> FullyConnectedOptionsBuilder<(T0, T1, T2)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [FullyConnectedOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions>
            where
                Self: ::planus::WriteAsOffset<FullyConnectedOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAs<::planus::Offset<FullyConnectedOptions>>
            for FullyConnectedOptionsBuilder<(T0, T1, T2)>
        {
            type Prepared = ::planus::Offset<FullyConnectedOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOptional<::planus::Offset<FullyConnectedOptions>>
            for FullyConnectedOptionsBuilder<(T0, T1, T2)>
        {
            type Prepared = ::planus::Offset<FullyConnectedOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<FullyConnectedOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOffset<FullyConnectedOptions>
            for FullyConnectedOptionsBuilder<(T0, T1, T2)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions> {
                let (v0, v1, v2) = &self.0;
                FullyConnectedOptions::create(builder, v0, v1, v2)
            }
        }

        /// Reference to a deserialized [FullyConnectedOptions].
        #[derive(Copy, Clone)]
        pub struct FullyConnectedOptionsRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> FullyConnectedOptionsRef<'a> {
            /// Getter for the [`fused_activation_function` field](FullyConnectedOptions#structfield.fused_activation_function).
            #[inline]
            pub fn fused_activation_function(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "FullyConnectedOptions", "fused_activation_function")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`weights_format` field](FullyConnectedOptions#structfield.weights_format).
            #[inline]
            pub fn weights_format(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(1, "FullyConnectedOptions", "weights_format")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`keep_num_dims` field](FullyConnectedOptions#structfield.keep_num_dims).
            #[inline]
            pub fn keep_num_dims(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(2, "FullyConnectedOptions", "keep_num_dims")?
                        .unwrap_or(false),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for FullyConnectedOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("FullyConnectedOptionsRef");
                f.field(
                    "fused_activation_function",
                    &self.fused_activation_function(),
                );
                f.field("weights_format", &self.weights_format());
                f.field("keep_num_dims", &self.keep_num_dims());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<FullyConnectedOptionsRef<'a>> for FullyConnectedOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: FullyConnectedOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    fused_activation_function: ::core::convert::TryInto::try_into(
                        value.fused_activation_function()?,
                    )?,
                    weights_format: ::core::convert::TryInto::try_into(value.weights_format()?)?,
                    keep_num_dims: ::core::convert::TryInto::try_into(value.keep_num_dims()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for FullyConnectedOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for FullyConnectedOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[FullyConnectedOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<FullyConnectedOptions>>
            for FullyConnectedOptions
        {
            type Value = ::planus::Offset<FullyConnectedOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<FullyConnectedOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for FullyConnectedOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[FullyConnectedOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `SoftmaxOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `SoftmaxOptions` in the file `schema/tflite_subset.fbs:327`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct SoftmaxOptions {
            /// The field `beta` in the table `SoftmaxOptions`
            pub beta: f32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SoftmaxOptions {
            fn default() -> Self {
                Self { beta: 0.0 }
            }
        }

        impl SoftmaxOptions {
            /// Creates a [SoftmaxOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SoftmaxOptionsBuilder<()> {
                SoftmaxOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_beta: impl ::planus::WriteAsDefault<f32, f32>,
            ) -> ::planus::Offset<Self> {
                let prepared_beta = field_beta.prepare(builder, &0.0);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_beta.is_some() {
                    table_writer.write_entry::<f32>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_beta) = prepared_beta {
                            object_writer.write::<_, _, 4>(&prepared_beta);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SoftmaxOptions>> for SoftmaxOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SoftmaxOptions>> for SoftmaxOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SoftmaxOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SoftmaxOptions> for SoftmaxOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions> {
                SoftmaxOptions::create(builder, self.beta)
            }
        }

        /// Builder for serializing an instance of the [SoftmaxOptions] type.
        ///
        /// Can be created using the [SoftmaxOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SoftmaxOptionsBuilder<State>(State);

        impl SoftmaxOptionsBuilder<()> {
            /// Setter for the [`beta` field](SoftmaxOptions#structfield.beta).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn beta<T0>(self, value: T0) -> SoftmaxOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<f32, f32>,
            {
                SoftmaxOptionsBuilder((value,))
            }

            /// Sets the [`beta` field](SoftmaxOptions#structfield.beta) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn beta_as_default(self) -> SoftmaxOptionsBuilder<(::planus::DefaultValue,)> {
                self.beta(::planus::DefaultValue)
            }
        }

        impl<T0> SoftmaxOptionsBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SoftmaxOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions>
            where
                Self: ::planus::WriteAsOffset<SoftmaxOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>>
            ::planus::WriteAs<::planus::Offset<SoftmaxOptions>> for SoftmaxOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<SoftmaxOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>>
            ::planus::WriteAsOptional<::planus::Offset<SoftmaxOptions>>
            for SoftmaxOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<SoftmaxOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SoftmaxOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>> ::planus::WriteAsOffset<SoftmaxOptions>
            for SoftmaxOptionsBuilder<(T0,)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions> {
                let (v0,) = &self.0;
                SoftmaxOptions::create(builder, v0)
            }
        }

        /// Reference to a deserialized [SoftmaxOptions].
        #[derive(Copy, Clone)]
        pub struct SoftmaxOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SoftmaxOptionsRef<'a> {
            /// Getter for the [`beta` field](SoftmaxOptions#structfield.beta).
            #[inline]
            pub fn beta(&self) -> ::planus::Result<f32> {
                ::core::result::Result::Ok(
                    self.0.access(0, "SoftmaxOptions", "beta")?.unwrap_or(0.0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for SoftmaxOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SoftmaxOptionsRef");
                f.field("beta", &self.beta());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SoftmaxOptionsRef<'a>> for SoftmaxOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: SoftmaxOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    beta: ::core::convert::TryInto::try_into(value.beta()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for SoftmaxOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SoftmaxOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[SoftmaxOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SoftmaxOptions>> for SoftmaxOptions {
            type Value = ::planus::Offset<SoftmaxOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SoftmaxOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SoftmaxOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SoftmaxOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `ConcatenationOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `ConcatenationOptions` in the file `schema/tflite_subset.fbs:331`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct ConcatenationOptions {
            /// The field `axis` in the table `ConcatenationOptions`
            pub axis: i32,
            /// The field `fused_activation_function` in the table `ConcatenationOptions`
            pub fused_activation_function: i8,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for ConcatenationOptions {
            fn default() -> Self {
                Self {
                    axis: 0,
                    fused_activation_function: 0,
                }
            }
        }

        impl ConcatenationOptions {
            /// Creates a [ConcatenationOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> ConcatenationOptionsBuilder<()> {
                ConcatenationOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_axis: impl ::planus::WriteAsDefault<i32, i32>,
                field_fused_activation_function: impl ::planus::WriteAsDefault<i8, i8>,
            ) -> ::planus::Offset<Self> {
                let prepared_axis = field_axis.prepare(builder, &0);
                let prepared_fused_activation_function =
                    field_fused_activation_function.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<8> =
                    ::core::default::Default::default();
                if prepared_axis.is_some() {
                    table_writer.write_entry::<i32>(0);
                }
                if prepared_fused_activation_function.is_some() {
                    table_writer.write_entry::<i8>(1);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_axis) = prepared_axis {
                            object_writer.write::<_, _, 4>(&prepared_axis);
                        }
                        if let ::core::option::Option::Some(prepared_fused_activation_function) =
                            prepared_fused_activation_function
                        {
                            object_writer.write::<_, _, 1>(&prepared_fused_activation_function);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<ConcatenationOptions>> for ConcatenationOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ConcatenationOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<ConcatenationOptions>> for ConcatenationOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ConcatenationOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<ConcatenationOptions> for ConcatenationOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ConcatenationOptions> {
                ConcatenationOptions::create(builder, self.axis, self.fused_activation_function)
            }
        }

        /// Builder for serializing an instance of the [ConcatenationOptions] type.
        ///
        /// Can be created using the [ConcatenationOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct ConcatenationOptionsBuilder<State>(State);

        impl ConcatenationOptionsBuilder<()> {
            /// Setter for the [`axis` field](ConcatenationOptions#structfield.axis).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn axis<T0>(self, value: T0) -> ConcatenationOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i32, i32>,
            {
                ConcatenationOptionsBuilder((value,))
            }

            /// Sets the [`axis` field](ConcatenationOptions#structfield.axis) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn axis_as_default(self) -> ConcatenationOptionsBuilder<(::planus::DefaultValue,)> {
                self.axis(::planus::DefaultValue)
            }
        }

        impl<T0> ConcatenationOptionsBuilder<(T0,)> {
            /// Setter for the [`fused_activation_function` field](ConcatenationOptions#structfield.fused_activation_function).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function<T1>(
                self,
                value: T1,
            ) -> ConcatenationOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0,) = self.0;
                ConcatenationOptionsBuilder((v0, value))
            }

            /// Sets the [`fused_activation_function` field](ConcatenationOptions#structfield.fused_activation_function) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function_as_default(
                self,
            ) -> ConcatenationOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.fused_activation_function(::planus::DefaultValue)
            }
        }

        impl<T0, T1> ConcatenationOptionsBuilder<(T0, T1)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [ConcatenationOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ConcatenationOptions>
            where
                Self: ::planus::WriteAsOffset<ConcatenationOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>, T1: ::planus::WriteAsDefault<i8, i8>>
            ::planus::WriteAs<::planus::Offset<ConcatenationOptions>>
            for ConcatenationOptionsBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<ConcatenationOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ConcatenationOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>, T1: ::planus::WriteAsDefault<i8, i8>>
            ::planus::WriteAsOptional<::planus::Offset<ConcatenationOptions>>
            for ConcatenationOptionsBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<ConcatenationOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ConcatenationOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>, T1: ::planus::WriteAsDefault<i8, i8>>
            ::planus::WriteAsOffset<ConcatenationOptions>
            for ConcatenationOptionsBuilder<(T0, T1)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ConcatenationOptions> {
                let (v0, v1) = &self.0;
                ConcatenationOptions::create(builder, v0, v1)
            }
        }

        /// Reference to a deserialized [ConcatenationOptions].
        #[derive(Copy, Clone)]
        pub struct ConcatenationOptionsRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> ConcatenationOptionsRef<'a> {
            /// Getter for the [`axis` field](ConcatenationOptions#structfield.axis).
            #[inline]
            pub fn axis(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "ConcatenationOptions", "axis")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`fused_activation_function` field](ConcatenationOptions#structfield.fused_activation_function).
            #[inline]
            pub fn fused_activation_function(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(1, "ConcatenationOptions", "fused_activation_function")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for ConcatenationOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("ConcatenationOptionsRef");
                f.field("axis", &self.axis());
                f.field(
                    "fused_activation_function",
                    &self.fused_activation_function(),
                );
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<ConcatenationOptionsRef<'a>> for ConcatenationOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: ConcatenationOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    axis: ::core::convert::TryInto::try_into(value.axis()?)?,
                    fused_activation_function: ::core::convert::TryInto::try_into(
                        value.fused_activation_function()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for ConcatenationOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for ConcatenationOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[ConcatenationOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<ConcatenationOptions>> for ConcatenationOptions {
            type Value = ::planus::Offset<ConcatenationOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<ConcatenationOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for ConcatenationOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[ConcatenationOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `ResizeBilinearOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `ResizeBilinearOptions` in the file `schema/tflite_subset.fbs:336`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct ResizeBilinearOptions {
            /// The field `align_corners` in the table `ResizeBilinearOptions`
            pub align_corners: bool,
            /// The field `half_pixel_centers` in the table `ResizeBilinearOptions`
            pub half_pixel_centers: bool,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for ResizeBilinearOptions {
            fn default() -> Self {
                Self {
                    align_corners: false,
                    half_pixel_centers: false,
                }
            }
        }

        impl ResizeBilinearOptions {
            /// Creates a [ResizeBilinearOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> ResizeBilinearOptionsBuilder<()> {
                ResizeBilinearOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_align_corners: impl ::planus::WriteAsDefault<bool, bool>,
                field_half_pixel_centers: impl ::planus::WriteAsDefault<bool, bool>,
            ) -> ::planus::Offset<Self> {
                let prepared_align_corners = field_align_corners.prepare(builder, &false);
                let prepared_half_pixel_centers = field_half_pixel_centers.prepare(builder, &false);

                let mut table_writer: ::planus::table_writer::TableWriter<12> =
                    ::core::default::Default::default();
                if prepared_align_corners.is_some() {
                    table_writer.write_entry::<bool>(2);
                }
                if prepared_half_pixel_centers.is_some() {
                    table_writer.write_entry::<bool>(3);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_align_corners) =
                            prepared_align_corners
                        {
                            object_writer.write::<_, _, 1>(&prepared_align_corners);
                        }
                        if let ::core::option::Option::Some(prepared_half_pixel_centers) =
                            prepared_half_pixel_centers
                        {
                            object_writer.write::<_, _, 1>(&prepared_half_pixel_centers);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<ResizeBilinearOptions>> for ResizeBilinearOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeBilinearOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<ResizeBilinearOptions>> for ResizeBilinearOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ResizeBilinearOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<ResizeBilinearOptions> for ResizeBilinearOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeBilinearOptions> {
                ResizeBilinearOptions::create(builder, self.align_corners, self.half_pixel_centers)
            }
        }

        /// Builder for serializing an instance of the [ResizeBilinearOptions] type.
        ///
        /// Can be created using the [ResizeBilinearOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct ResizeBilinearOptionsBuilder<State>(State);

        impl ResizeBilinearOptionsBuilder<()> {
            /// Setter for the [`align_corners` field](ResizeBilinearOptions#structfield.align_corners).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn align_corners<T0>(self, value: T0) -> ResizeBilinearOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<bool, bool>,
            {
                ResizeBilinearOptionsBuilder((value,))
            }

            /// Sets the [`align_corners` field](ResizeBilinearOptions#structfield.align_corners) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn align_corners_as_default(
                self,
            ) -> ResizeBilinearOptionsBuilder<(::planus::DefaultValue,)> {
                self.align_corners(::planus::DefaultValue)
            }
        }

        impl<T0> ResizeBilinearOptionsBuilder<(T0,)> {
            /// Setter for the [`half_pixel_centers` field](ResizeBilinearOptions#structfield.half_pixel_centers).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn half_pixel_centers<T1>(self, value: T1) -> ResizeBilinearOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0,) = self.0;
                ResizeBilinearOptionsBuilder((v0, value))
            }

            /// Sets the [`half_pixel_centers` field](ResizeBilinearOptions#structfield.half_pixel_centers) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn half_pixel_centers_as_default(
                self,
            ) -> ResizeBilinearOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.half_pixel_centers(::planus::DefaultValue)
            }
        }

        impl<T0, T1> ResizeBilinearOptionsBuilder<(T0, T1)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [ResizeBilinearOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeBilinearOptions>
            where
                Self: ::planus::WriteAsOffset<ResizeBilinearOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<bool, bool>,
                T1: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAs<::planus::Offset<ResizeBilinearOptions>>
            for ResizeBilinearOptionsBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<ResizeBilinearOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeBilinearOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<bool, bool>,
                T1: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOptional<::planus::Offset<ResizeBilinearOptions>>
            for ResizeBilinearOptionsBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<ResizeBilinearOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ResizeBilinearOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<bool, bool>,
                T1: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOffset<ResizeBilinearOptions>
            for ResizeBilinearOptionsBuilder<(T0, T1)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeBilinearOptions> {
                let (v0, v1) = &self.0;
                ResizeBilinearOptions::create(builder, v0, v1)
            }
        }

        /// Reference to a deserialized [ResizeBilinearOptions].
        #[derive(Copy, Clone)]
        pub struct ResizeBilinearOptionsRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> ResizeBilinearOptionsRef<'a> {
            /// Getter for the [`align_corners` field](ResizeBilinearOptions#structfield.align_corners).
            #[inline]
            pub fn align_corners(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(2, "ResizeBilinearOptions", "align_corners")?
                        .unwrap_or(false),
                )
            }

            /// Getter for the [`half_pixel_centers` field](ResizeBilinearOptions#structfield.half_pixel_centers).
            #[inline]
            pub fn half_pixel_centers(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "ResizeBilinearOptions", "half_pixel_centers")?
                        .unwrap_or(false),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for ResizeBilinearOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("ResizeBilinearOptionsRef");
                f.field("align_corners", &self.align_corners());
                f.field("half_pixel_centers", &self.half_pixel_centers());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<ResizeBilinearOptionsRef<'a>> for ResizeBilinearOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: ResizeBilinearOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    align_corners: ::core::convert::TryInto::try_into(value.align_corners()?)?,
                    half_pixel_centers: ::core::convert::TryInto::try_into(
                        value.half_pixel_centers()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for ResizeBilinearOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for ResizeBilinearOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[ResizeBilinearOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<ResizeBilinearOptions>>
            for ResizeBilinearOptions
        {
            type Value = ::planus::Offset<ResizeBilinearOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<ResizeBilinearOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for ResizeBilinearOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[ResizeBilinearOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `ResizeNearestNeighborOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `ResizeNearestNeighborOptions` in the file `schema/tflite_subset.fbs:343`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct ResizeNearestNeighborOptions {
            /// The field `align_corners` in the table `ResizeNearestNeighborOptions`
            pub align_corners: bool,
            /// The field `half_pixel_centers` in the table `ResizeNearestNeighborOptions`
            pub half_pixel_centers: bool,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for ResizeNearestNeighborOptions {
            fn default() -> Self {
                Self {
                    align_corners: false,
                    half_pixel_centers: false,
                }
            }
        }

        impl ResizeNearestNeighborOptions {
            /// Creates a [ResizeNearestNeighborOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> ResizeNearestNeighborOptionsBuilder<()> {
                ResizeNearestNeighborOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_align_corners: impl ::planus::WriteAsDefault<bool, bool>,
                field_half_pixel_centers: impl ::planus::WriteAsDefault<bool, bool>,
            ) -> ::planus::Offset<Self> {
                let prepared_align_corners = field_align_corners.prepare(builder, &false);
                let prepared_half_pixel_centers = field_half_pixel_centers.prepare(builder, &false);

                let mut table_writer: ::planus::table_writer::TableWriter<8> =
                    ::core::default::Default::default();
                if prepared_align_corners.is_some() {
                    table_writer.write_entry::<bool>(0);
                }
                if prepared_half_pixel_centers.is_some() {
                    table_writer.write_entry::<bool>(1);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_align_corners) =
                            prepared_align_corners
                        {
                            object_writer.write::<_, _, 1>(&prepared_align_corners);
                        }
                        if let ::core::option::Option::Some(prepared_half_pixel_centers) =
                            prepared_half_pixel_centers
                        {
                            object_writer.write::<_, _, 1>(&prepared_half_pixel_centers);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<ResizeNearestNeighborOptions>>
            for ResizeNearestNeighborOptions
        {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeNearestNeighborOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<ResizeNearestNeighborOptions>>
            for ResizeNearestNeighborOptions
        {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ResizeNearestNeighborOptions>>
            {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<ResizeNearestNeighborOptions> for ResizeNearestNeighborOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeNearestNeighborOptions> {
                ResizeNearestNeighborOptions::create(
                    builder,
                    self.align_corners,
                    self.half_pixel_centers,
                )
            }
        }

        /// Builder for serializing an instance of the [ResizeNearestNeighborOptions] type.
        ///
        /// Can be created using the [ResizeNearestNeighborOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct ResizeNearestNeighborOptionsBuilder<State>(State);

        impl ResizeNearestNeighborOptionsBuilder<()> {
            /// Setter for the [`align_corners` field](ResizeNearestNeighborOptions#structfield.align_corners).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn align_corners<T0>(self, value: T0) -> ResizeNearestNeighborOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<bool, bool>,
            {
                ResizeNearestNeighborOptionsBuilder((value,))
            }

            /// Sets the [`align_corners` field](ResizeNearestNeighborOptions#structfield.align_corners) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn align_corners_as_default(
                self,
            ) -> ResizeNearestNeighborOptionsBuilder<(::planus::DefaultValue,)> {
                self.align_corners(::planus::DefaultValue)
            }
        }

        impl<T0> ResizeNearestNeighborOptionsBuilder<(T0,)> {
            /// Setter for the [`half_pixel_centers` field](ResizeNearestNeighborOptions#structfield.half_pixel_centers).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn half_pixel_centers<T1>(
                self,
                value: T1,
            ) -> ResizeNearestNeighborOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0,) = self.0;
                ResizeNearestNeighborOptionsBuilder((v0, value))
            }

            /// Sets the [`half_pixel_centers` field](ResizeNearestNeighborOptions#structfield.half_pixel_centers) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn half_pixel_centers_as_default(
                self,
            ) -> ResizeNearestNeighborOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.half_pixel_centers(::planus::DefaultValue)
            }
        }

        impl<T0, T1> ResizeNearestNeighborOptionsBuilder<(T0, T1)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [ResizeNearestNeighborOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeNearestNeighborOptions>
            where
                Self: ::planus::WriteAsOffset<ResizeNearestNeighborOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<bool, bool>,
                T1: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAs<::planus::Offset<ResizeNearestNeighborOptions>>
            for ResizeNearestNeighborOptionsBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<ResizeNearestNeighborOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeNearestNeighborOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<bool, bool>,
                T1: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOptional<::planus::Offset<ResizeNearestNeighborOptions>>
            for ResizeNearestNeighborOptionsBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<ResizeNearestNeighborOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ResizeNearestNeighborOptions>>
            {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<bool, bool>,
                T1: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOffset<ResizeNearestNeighborOptions>
            for ResizeNearestNeighborOptionsBuilder<(T0, T1)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<ResizeNearestNeighborOptions> {
                let (v0, v1) = &self.0;
                ResizeNearestNeighborOptions::create(builder, v0, v1)
            }
        }

        /// Reference to a deserialized [ResizeNearestNeighborOptions].
        #[derive(Copy, Clone)]
        pub struct ResizeNearestNeighborOptionsRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> ResizeNearestNeighborOptionsRef<'a> {
            /// Getter for the [`align_corners` field](ResizeNearestNeighborOptions#structfield.align_corners).
            #[inline]
            pub fn align_corners(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "ResizeNearestNeighborOptions", "align_corners")?
                        .unwrap_or(false),
                )
            }

            /// Getter for the [`half_pixel_centers` field](ResizeNearestNeighborOptions#structfield.half_pixel_centers).
            #[inline]
            pub fn half_pixel_centers(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(1, "ResizeNearestNeighborOptions", "half_pixel_centers")?
                        .unwrap_or(false),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for ResizeNearestNeighborOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("ResizeNearestNeighborOptionsRef");
                f.field("align_corners", &self.align_corners());
                f.field("half_pixel_centers", &self.half_pixel_centers());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<ResizeNearestNeighborOptionsRef<'a>>
            for ResizeNearestNeighborOptions
        {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: ResizeNearestNeighborOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    align_corners: ::core::convert::TryInto::try_into(value.align_corners()?)?,
                    half_pixel_centers: ::core::convert::TryInto::try_into(
                        value.half_pixel_centers()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for ResizeNearestNeighborOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for ResizeNearestNeighborOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[ResizeNearestNeighborOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<ResizeNearestNeighborOptions>>
            for ResizeNearestNeighborOptions
        {
            type Value = ::planus::Offset<ResizeNearestNeighborOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<ResizeNearestNeighborOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for ResizeNearestNeighborOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[ResizeNearestNeighborOptionsRef]",
                        "read_as_root",
                        0,
                    )
                })
            }
        }

        /// The table `ReshapeOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `ReshapeOptions` in the file `schema/tflite_subset.fbs:348`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct ReshapeOptions {
            /// The field `new_shape` in the table `ReshapeOptions`
            pub new_shape: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for ReshapeOptions {
            fn default() -> Self {
                Self {
                    new_shape: ::core::default::Default::default(),
                }
            }
        }

        impl ReshapeOptions {
            /// Creates a [ReshapeOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> ReshapeOptionsBuilder<()> {
                ReshapeOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_new_shape: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            ) -> ::planus::Offset<Self> {
                let prepared_new_shape = field_new_shape.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_new_shape.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_new_shape) = prepared_new_shape
                        {
                            object_writer.write::<_, _, 4>(&prepared_new_shape);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<ReshapeOptions>> for ReshapeOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<ReshapeOptions>> for ReshapeOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ReshapeOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<ReshapeOptions> for ReshapeOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions> {
                ReshapeOptions::create(builder, &self.new_shape)
            }
        }

        /// Builder for serializing an instance of the [ReshapeOptions] type.
        ///
        /// Can be created using the [ReshapeOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct ReshapeOptionsBuilder<State>(State);

        impl ReshapeOptionsBuilder<()> {
            /// Setter for the [`new_shape` field](ReshapeOptions#structfield.new_shape).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn new_shape<T0>(self, value: T0) -> ReshapeOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                ReshapeOptionsBuilder((value,))
            }

            /// Sets the [`new_shape` field](ReshapeOptions#structfield.new_shape) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn new_shape_as_null(self) -> ReshapeOptionsBuilder<((),)> {
                self.new_shape(())
            }
        }

        impl<T0> ReshapeOptionsBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [ReshapeOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions>
            where
                Self: ::planus::WriteAsOffset<ReshapeOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAs<::planus::Offset<ReshapeOptions>> for ReshapeOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<ReshapeOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAsOptional<::planus::Offset<ReshapeOptions>>
            for ReshapeOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<ReshapeOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ReshapeOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAsOffset<ReshapeOptions> for ReshapeOptionsBuilder<(T0,)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions> {
                let (v0,) = &self.0;
                ReshapeOptions::create(builder, v0)
            }
        }

        /// Reference to a deserialized [ReshapeOptions].
        #[derive(Copy, Clone)]
        pub struct ReshapeOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> ReshapeOptionsRef<'a> {
            /// Getter for the [`new_shape` field](ReshapeOptions#structfield.new_shape).
            #[inline]
            pub fn new_shape(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(0, "ReshapeOptions", "new_shape")
            }
        }

        impl<'a> ::core::fmt::Debug for ReshapeOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("ReshapeOptionsRef");
                if let ::core::option::Option::Some(field_new_shape) = self.new_shape().transpose()
                {
                    f.field("new_shape", &field_new_shape);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<ReshapeOptionsRef<'a>> for ReshapeOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: ReshapeOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    new_shape: if let ::core::option::Option::Some(new_shape) = value.new_shape()? {
                        ::core::option::Option::Some(new_shape.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for ReshapeOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for ReshapeOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[ReshapeOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<ReshapeOptions>> for ReshapeOptions {
            type Value = ::planus::Offset<ReshapeOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<ReshapeOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for ReshapeOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[ReshapeOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `ReducerOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `ReducerOptions` in the file `schema/tflite_subset.fbs:352`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct ReducerOptions {
            /// The field `keep_dims` in the table `ReducerOptions`
            pub keep_dims: bool,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for ReducerOptions {
            fn default() -> Self {
                Self { keep_dims: false }
            }
        }

        impl ReducerOptions {
            /// Creates a [ReducerOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> ReducerOptionsBuilder<()> {
                ReducerOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_keep_dims: impl ::planus::WriteAsDefault<bool, bool>,
            ) -> ::planus::Offset<Self> {
                let prepared_keep_dims = field_keep_dims.prepare(builder, &false);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_keep_dims.is_some() {
                    table_writer.write_entry::<bool>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_keep_dims) = prepared_keep_dims
                        {
                            object_writer.write::<_, _, 1>(&prepared_keep_dims);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<ReducerOptions>> for ReducerOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReducerOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<ReducerOptions>> for ReducerOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ReducerOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<ReducerOptions> for ReducerOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReducerOptions> {
                ReducerOptions::create(builder, self.keep_dims)
            }
        }

        /// Builder for serializing an instance of the [ReducerOptions] type.
        ///
        /// Can be created using the [ReducerOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct ReducerOptionsBuilder<State>(State);

        impl ReducerOptionsBuilder<()> {
            /// Setter for the [`keep_dims` field](ReducerOptions#structfield.keep_dims).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn keep_dims<T0>(self, value: T0) -> ReducerOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<bool, bool>,
            {
                ReducerOptionsBuilder((value,))
            }

            /// Sets the [`keep_dims` field](ReducerOptions#structfield.keep_dims) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn keep_dims_as_default(self) -> ReducerOptionsBuilder<(::planus::DefaultValue,)> {
                self.keep_dims(::planus::DefaultValue)
            }
        }

        impl<T0> ReducerOptionsBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [ReducerOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReducerOptions>
            where
                Self: ::planus::WriteAsOffset<ReducerOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<bool, bool>>
            ::planus::WriteAs<::planus::Offset<ReducerOptions>> for ReducerOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<ReducerOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReducerOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<bool, bool>>
            ::planus::WriteAsOptional<::planus::Offset<ReducerOptions>>
            for ReducerOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<ReducerOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ReducerOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsDefault<bool, bool>> ::planus::WriteAsOffset<ReducerOptions>
            for ReducerOptionsBuilder<(T0,)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReducerOptions> {
                let (v0,) = &self.0;
                ReducerOptions::create(builder, v0)
            }
        }

        /// Reference to a deserialized [ReducerOptions].
        #[derive(Copy, Clone)]
        pub struct ReducerOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> ReducerOptionsRef<'a> {
            /// Getter for the [`keep_dims` field](ReducerOptions#structfield.keep_dims).
            #[inline]
            pub fn keep_dims(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "ReducerOptions", "keep_dims")?
                        .unwrap_or(false),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for ReducerOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("ReducerOptionsRef");
                f.field("keep_dims", &self.keep_dims());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<ReducerOptionsRef<'a>> for ReducerOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: ReducerOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    keep_dims: ::core::convert::TryInto::try_into(value.keep_dims()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for ReducerOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for ReducerOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[ReducerOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<ReducerOptions>> for ReducerOptions {
            type Value = ::planus::Offset<ReducerOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<ReducerOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for ReducerOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[ReducerOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `SqueezeOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `SqueezeOptions` in the file `schema/tflite_subset.fbs:356`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct SqueezeOptions {
            /// The field `squeeze_dims` in the table `SqueezeOptions`
            pub squeeze_dims: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SqueezeOptions {
            fn default() -> Self {
                Self {
                    squeeze_dims: ::core::default::Default::default(),
                }
            }
        }

        impl SqueezeOptions {
            /// Creates a [SqueezeOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SqueezeOptionsBuilder<()> {
                SqueezeOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_squeeze_dims: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            ) -> ::planus::Offset<Self> {
                let prepared_squeeze_dims = field_squeeze_dims.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_squeeze_dims.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_squeeze_dims) =
                            prepared_squeeze_dims
                        {
                            object_writer.write::<_, _, 4>(&prepared_squeeze_dims);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SqueezeOptions>> for SqueezeOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SqueezeOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SqueezeOptions>> for SqueezeOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SqueezeOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SqueezeOptions> for SqueezeOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SqueezeOptions> {
                SqueezeOptions::create(builder, &self.squeeze_dims)
            }
        }

        /// Builder for serializing an instance of the [SqueezeOptions] type.
        ///
        /// Can be created using the [SqueezeOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SqueezeOptionsBuilder<State>(State);

        impl SqueezeOptionsBuilder<()> {
            /// Setter for the [`squeeze_dims` field](SqueezeOptions#structfield.squeeze_dims).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn squeeze_dims<T0>(self, value: T0) -> SqueezeOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                SqueezeOptionsBuilder((value,))
            }

            /// Sets the [`squeeze_dims` field](SqueezeOptions#structfield.squeeze_dims) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn squeeze_dims_as_null(self) -> SqueezeOptionsBuilder<((),)> {
                self.squeeze_dims(())
            }
        }

        impl<T0> SqueezeOptionsBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SqueezeOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<SqueezeOptions>
            where
                Self: ::planus::WriteAsOffset<SqueezeOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAs<::planus::Offset<SqueezeOptions>> for SqueezeOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<SqueezeOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SqueezeOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAsOptional<::planus::Offset<SqueezeOptions>>
            for SqueezeOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<SqueezeOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SqueezeOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAsOffset<SqueezeOptions> for SqueezeOptionsBuilder<(T0,)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SqueezeOptions> {
                let (v0,) = &self.0;
                SqueezeOptions::create(builder, v0)
            }
        }

        /// Reference to a deserialized [SqueezeOptions].
        #[derive(Copy, Clone)]
        pub struct SqueezeOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SqueezeOptionsRef<'a> {
            /// Getter for the [`squeeze_dims` field](SqueezeOptions#structfield.squeeze_dims).
            #[inline]
            pub fn squeeze_dims(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(0, "SqueezeOptions", "squeeze_dims")
            }
        }

        impl<'a> ::core::fmt::Debug for SqueezeOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SqueezeOptionsRef");
                if let ::core::option::Option::Some(field_squeeze_dims) =
                    self.squeeze_dims().transpose()
                {
                    f.field("squeeze_dims", &field_squeeze_dims);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SqueezeOptionsRef<'a>> for SqueezeOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: SqueezeOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    squeeze_dims: if let ::core::option::Option::Some(squeeze_dims) =
                        value.squeeze_dims()?
                    {
                        ::core::option::Option::Some(squeeze_dims.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for SqueezeOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SqueezeOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[SqueezeOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SqueezeOptions>> for SqueezeOptions {
            type Value = ::planus::Offset<SqueezeOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SqueezeOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SqueezeOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SqueezeOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `SplitOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `SplitOptions` in the file `schema/tflite_subset.fbs:360`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct SplitOptions {
            /// The field `num_splits` in the table `SplitOptions`
            pub num_splits: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SplitOptions {
            fn default() -> Self {
                Self { num_splits: 0 }
            }
        }

        impl SplitOptions {
            /// Creates a [SplitOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SplitOptionsBuilder<()> {
                SplitOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_num_splits: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_num_splits = field_num_splits.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_num_splits.is_some() {
                    table_writer.write_entry::<i32>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_num_splits) =
                            prepared_num_splits
                        {
                            object_writer.write::<_, _, 4>(&prepared_num_splits);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SplitOptions>> for SplitOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SplitOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SplitOptions>> for SplitOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SplitOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SplitOptions> for SplitOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SplitOptions> {
                SplitOptions::create(builder, self.num_splits)
            }
        }

        /// Builder for serializing an instance of the [SplitOptions] type.
        ///
        /// Can be created using the [SplitOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SplitOptionsBuilder<State>(State);

        impl SplitOptionsBuilder<()> {
            /// Setter for the [`num_splits` field](SplitOptions#structfield.num_splits).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn num_splits<T0>(self, value: T0) -> SplitOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i32, i32>,
            {
                SplitOptionsBuilder((value,))
            }

            /// Sets the [`num_splits` field](SplitOptions#structfield.num_splits) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn num_splits_as_default(self) -> SplitOptionsBuilder<(::planus::DefaultValue,)> {
                self.num_splits(::planus::DefaultValue)
            }
        }

        impl<T0> SplitOptionsBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SplitOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<SplitOptions>
            where
                Self: ::planus::WriteAsOffset<SplitOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>>
            ::planus::WriteAs<::planus::Offset<SplitOptions>> for SplitOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<SplitOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SplitOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>>
            ::planus::WriteAsOptional<::planus::Offset<SplitOptions>>
            for SplitOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<SplitOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SplitOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>> ::planus::WriteAsOffset<SplitOptions>
            for SplitOptionsBuilder<(T0,)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SplitOptions> {
                let (v0,) = &self.0;
                SplitOptions::create(builder, v0)
            }
        }

        /// Reference to a deserialized [SplitOptions].
        #[derive(Copy, Clone)]
        pub struct SplitOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SplitOptionsRef<'a> {
            /// Getter for the [`num_splits` field](SplitOptions#structfield.num_splits).
            #[inline]
            pub fn num_splits(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(0, "SplitOptions", "num_splits")?.unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for SplitOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SplitOptionsRef");
                f.field("num_splits", &self.num_splits());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SplitOptionsRef<'a>> for SplitOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: SplitOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    num_splits: ::core::convert::TryInto::try_into(value.num_splits()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for SplitOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SplitOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[SplitOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SplitOptions>> for SplitOptions {
            type Value = ::planus::Offset<SplitOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SplitOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SplitOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SplitOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `StridedSliceOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `StridedSliceOptions` in the file `schema/tflite_subset.fbs:364`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct StridedSliceOptions {
            /// The field `begin_mask` in the table `StridedSliceOptions`
            pub begin_mask: i32,
            /// The field `end_mask` in the table `StridedSliceOptions`
            pub end_mask: i32,
            /// The field `ellipsis_mask` in the table `StridedSliceOptions`
            pub ellipsis_mask: i32,
            /// The field `new_axis_mask` in the table `StridedSliceOptions`
            pub new_axis_mask: i32,
            /// The field `shrink_axis_mask` in the table `StridedSliceOptions`
            pub shrink_axis_mask: i32,
            /// The field `offset` in the table `StridedSliceOptions`
            pub offset: bool,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for StridedSliceOptions {
            fn default() -> Self {
                Self {
                    begin_mask: 0,
                    end_mask: 0,
                    ellipsis_mask: 0,
                    new_axis_mask: 0,
                    shrink_axis_mask: 0,
                    offset: false,
                }
            }
        }

        impl StridedSliceOptions {
            /// Creates a [StridedSliceOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> StridedSliceOptionsBuilder<()> {
                StridedSliceOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_begin_mask: impl ::planus::WriteAsDefault<i32, i32>,
                field_end_mask: impl ::planus::WriteAsDefault<i32, i32>,
                field_ellipsis_mask: impl ::planus::WriteAsDefault<i32, i32>,
                field_new_axis_mask: impl ::planus::WriteAsDefault<i32, i32>,
                field_shrink_axis_mask: impl ::planus::WriteAsDefault<i32, i32>,
                field_offset: impl ::planus::WriteAsDefault<bool, bool>,
            ) -> ::planus::Offset<Self> {
                let prepared_begin_mask = field_begin_mask.prepare(builder, &0);
                let prepared_end_mask = field_end_mask.prepare(builder, &0);
                let prepared_ellipsis_mask = field_ellipsis_mask.prepare(builder, &0);
                let prepared_new_axis_mask = field_new_axis_mask.prepare(builder, &0);
                let prepared_shrink_axis_mask = field_shrink_axis_mask.prepare(builder, &0);
                let prepared_offset = field_offset.prepare(builder, &false);

                let mut table_writer: ::planus::table_writer::TableWriter<16> =
                    ::core::default::Default::default();
                if prepared_begin_mask.is_some() {
                    table_writer.write_entry::<i32>(0);
                }
                if prepared_end_mask.is_some() {
                    table_writer.write_entry::<i32>(1);
                }
                if prepared_ellipsis_mask.is_some() {
                    table_writer.write_entry::<i32>(2);
                }
                if prepared_new_axis_mask.is_some() {
                    table_writer.write_entry::<i32>(3);
                }
                if prepared_shrink_axis_mask.is_some() {
                    table_writer.write_entry::<i32>(4);
                }
                if prepared_offset.is_some() {
                    table_writer.write_entry::<bool>(5);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_begin_mask) =
                            prepared_begin_mask
                        {
                            object_writer.write::<_, _, 4>(&prepared_begin_mask);
                        }
                        if let ::core::option::Option::Some(prepared_end_mask) = prepared_end_mask {
                            object_writer.write::<_, _, 4>(&prepared_end_mask);
                        }
                        if let ::core::option::Option::Some(prepared_ellipsis_mask) =
                            prepared_ellipsis_mask
                        {
                            object_writer.write::<_, _, 4>(&prepared_ellipsis_mask);
                        }
                        if let ::core::option::Option::Some(prepared_new_axis_mask) =
                            prepared_new_axis_mask
                        {
                            object_writer.write::<_, _, 4>(&prepared_new_axis_mask);
                        }
                        if let ::core::option::Option::Some(prepared_shrink_axis_mask) =
                            prepared_shrink_axis_mask
                        {
                            object_writer.write::<_, _, 4>(&prepared_shrink_axis_mask);
                        }
                        if let ::core::option::Option::Some(prepared_offset) = prepared_offset {
                            object_writer.write::<_, _, 1>(&prepared_offset);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<StridedSliceOptions>> for StridedSliceOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<StridedSliceOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<StridedSliceOptions>> for StridedSliceOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<StridedSliceOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<StridedSliceOptions> for StridedSliceOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<StridedSliceOptions> {
                StridedSliceOptions::create(
                    builder,
                    self.begin_mask,
                    self.end_mask,
                    self.ellipsis_mask,
                    self.new_axis_mask,
                    self.shrink_axis_mask,
                    self.offset,
                )
            }
        }

        /// Builder for serializing an instance of the [StridedSliceOptions] type.
        ///
        /// Can be created using the [StridedSliceOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct StridedSliceOptionsBuilder<State>(State);

        impl StridedSliceOptionsBuilder<()> {
            /// Setter for the [`begin_mask` field](StridedSliceOptions#structfield.begin_mask).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn begin_mask<T0>(self, value: T0) -> StridedSliceOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i32, i32>,
            {
                StridedSliceOptionsBuilder((value,))
            }

            /// Sets the [`begin_mask` field](StridedSliceOptions#structfield.begin_mask) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn begin_mask_as_default(
                self,
            ) -> StridedSliceOptionsBuilder<(::planus::DefaultValue,)> {
                self.begin_mask(::planus::DefaultValue)
            }
        }

        impl<T0> StridedSliceOptionsBuilder<(T0,)> {
            /// Setter for the [`end_mask` field](StridedSliceOptions#structfield.end_mask).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn end_mask<T1>(self, value: T1) -> StridedSliceOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0,) = self.0;
                StridedSliceOptionsBuilder((v0, value))
            }

            /// Sets the [`end_mask` field](StridedSliceOptions#structfield.end_mask) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn end_mask_as_default(
                self,
            ) -> StridedSliceOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.end_mask(::planus::DefaultValue)
            }
        }

        impl<T0, T1> StridedSliceOptionsBuilder<(T0, T1)> {
            /// Setter for the [`ellipsis_mask` field](StridedSliceOptions#structfield.ellipsis_mask).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn ellipsis_mask<T2>(self, value: T2) -> StridedSliceOptionsBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1) = self.0;
                StridedSliceOptionsBuilder((v0, v1, value))
            }

            /// Sets the [`ellipsis_mask` field](StridedSliceOptions#structfield.ellipsis_mask) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn ellipsis_mask_as_default(
                self,
            ) -> StridedSliceOptionsBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.ellipsis_mask(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> StridedSliceOptionsBuilder<(T0, T1, T2)> {
            /// Setter for the [`new_axis_mask` field](StridedSliceOptions#structfield.new_axis_mask).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn new_axis_mask<T3>(
                self,
                value: T3,
            ) -> StridedSliceOptionsBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2) = self.0;
                StridedSliceOptionsBuilder((v0, v1, v2, value))
            }

            /// Sets the [`new_axis_mask` field](StridedSliceOptions#structfield.new_axis_mask) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn new_axis_mask_as_default(
                self,
            ) -> StridedSliceOptionsBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.new_axis_mask(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> StridedSliceOptionsBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`shrink_axis_mask` field](StridedSliceOptions#structfield.shrink_axis_mask).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shrink_axis_mask<T4>(
                self,
                value: T4,
            ) -> StridedSliceOptionsBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3) = self.0;
                StridedSliceOptionsBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`shrink_axis_mask` field](StridedSliceOptions#structfield.shrink_axis_mask) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shrink_axis_mask_as_default(
                self,
            ) -> StridedSliceOptionsBuilder<(T0, T1, T2, T3, ::planus::DefaultValue)> {
                self.shrink_axis_mask(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4> StridedSliceOptionsBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`offset` field](StridedSliceOptions#structfield.offset).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn offset<T5>(
                self,
                value: T5,
            ) -> StridedSliceOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                StridedSliceOptionsBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`offset` field](StridedSliceOptions#structfield.offset) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn offset_as_default(
                self,
            ) -> StridedSliceOptionsBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)>
            {
                self.offset(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> StridedSliceOptionsBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [StridedSliceOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<StridedSliceOptions>
            where
                Self: ::planus::WriteAsOffset<StridedSliceOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i32, i32>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAs<::planus::Offset<StridedSliceOptions>>
            for StridedSliceOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<StridedSliceOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<StridedSliceOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i32, i32>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOptional<::planus::Offset<StridedSliceOptions>>
            for StridedSliceOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<StridedSliceOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<StridedSliceOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i32, i32>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsDefault<i32, i32>,
                T5: ::planus::WriteAsDefault<bool, bool>,
            > ::planus::WriteAsOffset<StridedSliceOptions>
            for StridedSliceOptionsBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<StridedSliceOptions> {
                let (v0, v1, v2, v3, v4, v5) = &self.0;
                StridedSliceOptions::create(builder, v0, v1, v2, v3, v4, v5)
            }
        }

        /// Reference to a deserialized [StridedSliceOptions].
        #[derive(Copy, Clone)]
        pub struct StridedSliceOptionsRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> StridedSliceOptionsRef<'a> {
            /// Getter for the [`begin_mask` field](StridedSliceOptions#structfield.begin_mask).
            #[inline]
            pub fn begin_mask(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "StridedSliceOptions", "begin_mask")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`end_mask` field](StridedSliceOptions#structfield.end_mask).
            #[inline]
            pub fn end_mask(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(1, "StridedSliceOptions", "end_mask")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`ellipsis_mask` field](StridedSliceOptions#structfield.ellipsis_mask).
            #[inline]
            pub fn ellipsis_mask(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(2, "StridedSliceOptions", "ellipsis_mask")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`new_axis_mask` field](StridedSliceOptions#structfield.new_axis_mask).
            #[inline]
            pub fn new_axis_mask(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "StridedSliceOptions", "new_axis_mask")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`shrink_axis_mask` field](StridedSliceOptions#structfield.shrink_axis_mask).
            #[inline]
            pub fn shrink_axis_mask(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(4, "StridedSliceOptions", "shrink_axis_mask")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`offset` field](StridedSliceOptions#structfield.offset).
            #[inline]
            pub fn offset(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(5, "StridedSliceOptions", "offset")?
                        .unwrap_or(false),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for StridedSliceOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("StridedSliceOptionsRef");
                f.field("begin_mask", &self.begin_mask());
                f.field("end_mask", &self.end_mask());
                f.field("ellipsis_mask", &self.ellipsis_mask());
                f.field("new_axis_mask", &self.new_axis_mask());
                f.field("shrink_axis_mask", &self.shrink_axis_mask());
                f.field("offset", &self.offset());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<StridedSliceOptionsRef<'a>> for StridedSliceOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: StridedSliceOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    begin_mask: ::core::convert::TryInto::try_into(value.begin_mask()?)?,
                    end_mask: ::core::convert::TryInto::try_into(value.end_mask()?)?,
                    ellipsis_mask: ::core::convert::TryInto::try_into(value.ellipsis_mask()?)?,
                    new_axis_mask: ::core::convert::TryInto::try_into(value.new_axis_mask()?)?,
                    shrink_axis_mask: ::core::convert::TryInto::try_into(
                        value.shrink_axis_mask()?,
                    )?,
                    offset: ::core::convert::TryInto::try_into(value.offset()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for StridedSliceOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for StridedSliceOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[StridedSliceOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<StridedSliceOptions>> for StridedSliceOptions {
            type Value = ::planus::Offset<StridedSliceOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<StridedSliceOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for StridedSliceOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[StridedSliceOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `TransposeConvOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `TransposeConvOptions` in the file `schema/tflite_subset.fbs:373`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct TransposeConvOptions {
            /// The field `padding` in the table `TransposeConvOptions`
            pub padding: i8,
            /// The field `stride_w` in the table `TransposeConvOptions`
            pub stride_w: i32,
            /// The field `stride_h` in the table `TransposeConvOptions`
            pub stride_h: i32,
            /// The field `fused_activation_function` in the table `TransposeConvOptions`
            pub fused_activation_function: i8,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for TransposeConvOptions {
            fn default() -> Self {
                Self {
                    padding: 0,
                    stride_w: 0,
                    stride_h: 0,
                    fused_activation_function: 0,
                }
            }
        }

        impl TransposeConvOptions {
            /// Creates a [TransposeConvOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> TransposeConvOptionsBuilder<()> {
                TransposeConvOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_padding: impl ::planus::WriteAsDefault<i8, i8>,
                field_stride_w: impl ::planus::WriteAsDefault<i32, i32>,
                field_stride_h: impl ::planus::WriteAsDefault<i32, i32>,
                field_fused_activation_function: impl ::planus::WriteAsDefault<i8, i8>,
            ) -> ::planus::Offset<Self> {
                let prepared_padding = field_padding.prepare(builder, &0);
                let prepared_stride_w = field_stride_w.prepare(builder, &0);
                let prepared_stride_h = field_stride_h.prepare(builder, &0);
                let prepared_fused_activation_function =
                    field_fused_activation_function.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<12> =
                    ::core::default::Default::default();
                if prepared_stride_w.is_some() {
                    table_writer.write_entry::<i32>(1);
                }
                if prepared_stride_h.is_some() {
                    table_writer.write_entry::<i32>(2);
                }
                if prepared_padding.is_some() {
                    table_writer.write_entry::<i8>(0);
                }
                if prepared_fused_activation_function.is_some() {
                    table_writer.write_entry::<i8>(3);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_stride_w) = prepared_stride_w {
                            object_writer.write::<_, _, 4>(&prepared_stride_w);
                        }
                        if let ::core::option::Option::Some(prepared_stride_h) = prepared_stride_h {
                            object_writer.write::<_, _, 4>(&prepared_stride_h);
                        }
                        if let ::core::option::Option::Some(prepared_padding) = prepared_padding {
                            object_writer.write::<_, _, 1>(&prepared_padding);
                        }
                        if let ::core::option::Option::Some(prepared_fused_activation_function) =
                            prepared_fused_activation_function
                        {
                            object_writer.write::<_, _, 1>(&prepared_fused_activation_function);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<TransposeConvOptions>> for TransposeConvOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<TransposeConvOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<TransposeConvOptions>> for TransposeConvOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<TransposeConvOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<TransposeConvOptions> for TransposeConvOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<TransposeConvOptions> {
                TransposeConvOptions::create(
                    builder,
                    self.padding,
                    self.stride_w,
                    self.stride_h,
                    self.fused_activation_function,
                )
            }
        }

        /// Builder for serializing an instance of the [TransposeConvOptions] type.
        ///
        /// Can be created using the [TransposeConvOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct TransposeConvOptionsBuilder<State>(State);

        impl TransposeConvOptionsBuilder<()> {
            /// Setter for the [`padding` field](TransposeConvOptions#structfield.padding).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn padding<T0>(self, value: T0) -> TransposeConvOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i8, i8>,
            {
                TransposeConvOptionsBuilder((value,))
            }

            /// Sets the [`padding` field](TransposeConvOptions#structfield.padding) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn padding_as_default(
                self,
            ) -> TransposeConvOptionsBuilder<(::planus::DefaultValue,)> {
                self.padding(::planus::DefaultValue)
            }
        }

        impl<T0> TransposeConvOptionsBuilder<(T0,)> {
            /// Setter for the [`stride_w` field](TransposeConvOptions#structfield.stride_w).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_w<T1>(self, value: T1) -> TransposeConvOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0,) = self.0;
                TransposeConvOptionsBuilder((v0, value))
            }

            /// Sets the [`stride_w` field](TransposeConvOptions#structfield.stride_w) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_w_as_default(
                self,
            ) -> TransposeConvOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.stride_w(::planus::DefaultValue)
            }
        }

        impl<T0, T1> TransposeConvOptionsBuilder<(T0, T1)> {
            /// Setter for the [`stride_h` field](TransposeConvOptions#structfield.stride_h).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_h<T2>(self, value: T2) -> TransposeConvOptionsBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1) = self.0;
                TransposeConvOptionsBuilder((v0, v1, value))
            }

            /// Sets the [`stride_h` field](TransposeConvOptions#structfield.stride_h) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn stride_h_as_default(
                self,
            ) -> TransposeConvOptionsBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.stride_h(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> TransposeConvOptionsBuilder<(T0, T1, T2)> {
            /// Setter for the [`fused_activation_function` field](TransposeConvOptions#structfield.fused_activation_function).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function<T3>(
                self,
                value: T3,
            ) -> TransposeConvOptionsBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0, v1, v2) = self.0;
                TransposeConvOptionsBuilder((v0, v1, v2, value))
            }

            /// Sets the [`fused_activation_function` field](TransposeConvOptions#structfield.fused_activation_function) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function_as_default(
                self,
            ) -> TransposeConvOptionsBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.fused_activation_function(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> TransposeConvOptionsBuilder<(T0, T1, T2, T3)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [TransposeConvOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<TransposeConvOptions>
            where
                Self: ::planus::WriteAsOffset<TransposeConvOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAs<::planus::Offset<TransposeConvOptions>>
            for TransposeConvOptionsBuilder<(T0, T1, T2, T3)>
        {
            type Prepared = ::planus::Offset<TransposeConvOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<TransposeConvOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAsOptional<::planus::Offset<TransposeConvOptions>>
            for TransposeConvOptionsBuilder<(T0, T1, T2, T3)>
        {
            type Prepared = ::planus::Offset<TransposeConvOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<TransposeConvOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i32, i32>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAsOffset<TransposeConvOptions>
            for TransposeConvOptionsBuilder<(T0, T1, T2, T3)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<TransposeConvOptions> {
                let (v0, v1, v2, v3) = &self.0;
                TransposeConvOptions::create(builder, v0, v1, v2, v3)
            }
        }

        /// Reference to a deserialized [TransposeConvOptions].
        #[derive(Copy, Clone)]
        pub struct TransposeConvOptionsRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> TransposeConvOptionsRef<'a> {
            /// Getter for the [`padding` field](TransposeConvOptions#structfield.padding).
            #[inline]
            pub fn padding(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "TransposeConvOptions", "padding")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`stride_w` field](TransposeConvOptions#structfield.stride_w).
            #[inline]
            pub fn stride_w(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(1, "TransposeConvOptions", "stride_w")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`stride_h` field](TransposeConvOptions#structfield.stride_h).
            #[inline]
            pub fn stride_h(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(2, "TransposeConvOptions", "stride_h")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`fused_activation_function` field](TransposeConvOptions#structfield.fused_activation_function).
            #[inline]
            pub fn fused_activation_function(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "TransposeConvOptions", "fused_activation_function")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for TransposeConvOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("TransposeConvOptionsRef");
                f.field("padding", &self.padding());
                f.field("stride_w", &self.stride_w());
                f.field("stride_h", &self.stride_h());
                f.field(
                    "fused_activation_function",
                    &self.fused_activation_function(),
                );
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<TransposeConvOptionsRef<'a>> for TransposeConvOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: TransposeConvOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    padding: ::core::convert::TryInto::try_into(value.padding()?)?,
                    stride_w: ::core::convert::TryInto::try_into(value.stride_w()?)?,
                    stride_h: ::core::convert::TryInto::try_into(value.stride_h()?)?,
                    fused_activation_function: ::core::convert::TryInto::try_into(
                        value.fused_activation_function()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for TransposeConvOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for TransposeConvOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[TransposeConvOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<TransposeConvOptions>> for TransposeConvOptions {
            type Value = ::planus::Offset<TransposeConvOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<TransposeConvOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for TransposeConvOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[TransposeConvOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `PackOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `PackOptions` in the file `schema/tflite_subset.fbs:380`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct PackOptions {
            /// The field `values_count` in the table `PackOptions`
            pub values_count: i32,
            /// The field `axis` in the table `PackOptions`
            pub axis: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for PackOptions {
            fn default() -> Self {
                Self {
                    values_count: 0,
                    axis: 0,
                }
            }
        }

        impl PackOptions {
            /// Creates a [PackOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> PackOptionsBuilder<()> {
                PackOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_values_count: impl ::planus::WriteAsDefault<i32, i32>,
                field_axis: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_values_count = field_values_count.prepare(builder, &0);
                let prepared_axis = field_axis.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<8> =
                    ::core::default::Default::default();
                if prepared_values_count.is_some() {
                    table_writer.write_entry::<i32>(0);
                }
                if prepared_axis.is_some() {
                    table_writer.write_entry::<i32>(1);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_values_count) =
                            prepared_values_count
                        {
                            object_writer.write::<_, _, 4>(&prepared_values_count);
                        }
                        if let ::core::option::Option::Some(prepared_axis) = prepared_axis {
                            object_writer.write::<_, _, 4>(&prepared_axis);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<PackOptions>> for PackOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<PackOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<PackOptions>> for PackOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<PackOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<PackOptions> for PackOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<PackOptions> {
                PackOptions::create(builder, self.values_count, self.axis)
            }
        }

        /// Builder for serializing an instance of the [PackOptions] type.
        ///
        /// Can be created using the [PackOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct PackOptionsBuilder<State>(State);

        impl PackOptionsBuilder<()> {
            /// Setter for the [`values_count` field](PackOptions#structfield.values_count).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn values_count<T0>(self, value: T0) -> PackOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i32, i32>,
            {
                PackOptionsBuilder((value,))
            }

            /// Sets the [`values_count` field](PackOptions#structfield.values_count) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn values_count_as_default(self) -> PackOptionsBuilder<(::planus::DefaultValue,)> {
                self.values_count(::planus::DefaultValue)
            }
        }

        impl<T0> PackOptionsBuilder<(T0,)> {
            /// Setter for the [`axis` field](PackOptions#structfield.axis).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn axis<T1>(self, value: T1) -> PackOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0,) = self.0;
                PackOptionsBuilder((v0, value))
            }

            /// Sets the [`axis` field](PackOptions#structfield.axis) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn axis_as_default(self) -> PackOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.axis(::planus::DefaultValue)
            }
        }

        impl<T0, T1> PackOptionsBuilder<(T0, T1)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [PackOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<PackOptions>
            where
                Self: ::planus::WriteAsOffset<PackOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>, T1: ::planus::WriteAsDefault<i32, i32>>
            ::planus::WriteAs<::planus::Offset<PackOptions>> for PackOptionsBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<PackOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<PackOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>, T1: ::planus::WriteAsDefault<i32, i32>>
            ::planus::WriteAsOptional<::planus::Offset<PackOptions>>
            for PackOptionsBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<PackOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<PackOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsDefault<i32, i32>, T1: ::planus::WriteAsDefault<i32, i32>>
            ::planus::WriteAsOffset<PackOptions> for PackOptionsBuilder<(T0, T1)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<PackOptions> {
                let (v0, v1) = &self.0;
                PackOptions::create(builder, v0, v1)
            }
        }

        /// Reference to a deserialized [PackOptions].
        #[derive(Copy, Clone)]
        pub struct PackOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> PackOptionsRef<'a> {
            /// Getter for the [`values_count` field](PackOptions#structfield.values_count).
            #[inline]
            pub fn values_count(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "PackOptions", "values_count")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`axis` field](PackOptions#structfield.axis).
            #[inline]
            pub fn axis(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(self.0.access(1, "PackOptions", "axis")?.unwrap_or(0))
            }
        }

        impl<'a> ::core::fmt::Debug for PackOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("PackOptionsRef");
                f.field("values_count", &self.values_count());
                f.field("axis", &self.axis());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<PackOptionsRef<'a>> for PackOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: PackOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    values_count: ::core::convert::TryInto::try_into(value.values_count()?)?,
                    axis: ::core::convert::TryInto::try_into(value.axis()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for PackOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for PackOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[PackOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<PackOptions>> for PackOptions {
            type Value = ::planus::Offset<PackOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<PackOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for PackOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[PackOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The union `BuiltinOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Union `BuiltinOptions` in the file `schema/tflite_subset.fbs:385`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub enum BuiltinOptions {
            /// The variant of type `Conv2DOptions` in the union `BuiltinOptions`
            Conv2DOptions(::planus::alloc::boxed::Box<self::Conv2DOptions>),

            /// The variant of type `DepthwiseConv2DOptions` in the union `BuiltinOptions`
            DepthwiseConv2DOptions(::planus::alloc::boxed::Box<self::DepthwiseConv2DOptions>),

            /// The variant `ConcatEmbeddingsOptions` in the union `BuiltinOptions`
            ConcatEmbeddingsOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `LSHProjectionOptions` in the union `BuiltinOptions`
            LshProjectionOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `Pool2DOptions` in the union `BuiltinOptions`
            Pool2DOptions(::planus::alloc::boxed::Box<self::Pool2DOptions>),

            /// The variant `SVDFOptions` in the union `BuiltinOptions`
            SvdfOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `RNNOptions` in the union `BuiltinOptions`
            RnnOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `FullyConnectedOptions` in the union `BuiltinOptions`
            FullyConnectedOptions(::planus::alloc::boxed::Box<self::FullyConnectedOptions>),

            /// The variant of type `SoftmaxOptions` in the union `BuiltinOptions`
            SoftmaxOptions(::planus::alloc::boxed::Box<self::SoftmaxOptions>),

            /// The variant of type `ConcatenationOptions` in the union `BuiltinOptions`
            ConcatenationOptions(::planus::alloc::boxed::Box<self::ConcatenationOptions>),

            /// The variant `AddOptions` in the union `BuiltinOptions`
            AddOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `L2NormOptions` in the union `BuiltinOptions`
            L2NormOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `LocalResponseNormalizationOptions` in the union `BuiltinOptions`
            LocalResponseNormalizationOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `LSTMOptions` in the union `BuiltinOptions`
            LstmOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `ResizeBilinearOptions` in the union `BuiltinOptions`
            ResizeBilinearOptions(::planus::alloc::boxed::Box<self::ResizeBilinearOptions>),

            /// The variant `CallOptions` in the union `BuiltinOptions`
            CallOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `ReshapeOptions` in the union `BuiltinOptions`
            ReshapeOptions(::planus::alloc::boxed::Box<self::ReshapeOptions>),

            /// The variant `SkipGramOptions` in the union `BuiltinOptions`
            SkipGramOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SpaceToDepthOptions` in the union `BuiltinOptions`
            SpaceToDepthOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `EmbeddingLookupSparseOptions` in the union `BuiltinOptions`
            EmbeddingLookupSparseOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `MulOptions` in the union `BuiltinOptions`
            MulOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `PadOptions` in the union `BuiltinOptions`
            PadOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `GatherOptions` in the union `BuiltinOptions`
            GatherOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `BatchToSpaceNDOptions` in the union `BuiltinOptions`
            BatchToSpaceNdOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SpaceToBatchNDOptions` in the union `BuiltinOptions`
            SpaceToBatchNdOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `TransposeOptions` in the union `BuiltinOptions`
            TransposeOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `ReducerOptions` in the union `BuiltinOptions`
            ReducerOptions(::planus::alloc::boxed::Box<self::ReducerOptions>),

            /// The variant `SubOptions` in the union `BuiltinOptions`
            SubOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `DivOptions` in the union `BuiltinOptions`
            DivOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `SqueezeOptions` in the union `BuiltinOptions`
            SqueezeOptions(::planus::alloc::boxed::Box<self::SqueezeOptions>),

            /// The variant `SequenceRNNOptions` in the union `BuiltinOptions`
            SequenceRnnOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `StridedSliceOptions` in the union `BuiltinOptions`
            StridedSliceOptions(::planus::alloc::boxed::Box<self::StridedSliceOptions>),

            /// The variant `ExpOptions` in the union `BuiltinOptions`
            ExpOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `TopKV2Options` in the union `BuiltinOptions`
            TopKv2Options(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `SplitOptions` in the union `BuiltinOptions`
            SplitOptions(::planus::alloc::boxed::Box<self::SplitOptions>),

            /// The variant `LogSoftmaxOptions` in the union `BuiltinOptions`
            LogSoftmaxOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `CastOptions` in the union `BuiltinOptions`
            CastOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `DequantizeOptions` in the union `BuiltinOptions`
            DequantizeOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `MaximumMinimumOptions` in the union `BuiltinOptions`
            MaximumMinimumOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ArgMaxOptions` in the union `BuiltinOptions`
            ArgMaxOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `LessOptions` in the union `BuiltinOptions`
            LessOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `NegOptions` in the union `BuiltinOptions`
            NegOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `PadV2Options` in the union `BuiltinOptions`
            PadV2Options(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `GreaterOptions` in the union `BuiltinOptions`
            GreaterOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `GreaterEqualOptions` in the union `BuiltinOptions`
            GreaterEqualOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `LessEqualOptions` in the union `BuiltinOptions`
            LessEqualOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SelectOptions` in the union `BuiltinOptions`
            SelectOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SliceOptions` in the union `BuiltinOptions`
            SliceOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `TransposeConvOptions` in the union `BuiltinOptions`
            TransposeConvOptions(::planus::alloc::boxed::Box<self::TransposeConvOptions>),

            /// The variant `SparseToDenseOptions` in the union `BuiltinOptions`
            SparseToDenseOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `TileOptions` in the union `BuiltinOptions`
            TileOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ExpandDimsOptions` in the union `BuiltinOptions`
            ExpandDimsOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `EqualOptions` in the union `BuiltinOptions`
            EqualOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `NotEqualOptions` in the union `BuiltinOptions`
            NotEqualOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ShapeOptions` in the union `BuiltinOptions`
            ShapeOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `PowOptions` in the union `BuiltinOptions`
            PowOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ArgMinOptions` in the union `BuiltinOptions`
            ArgMinOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `FakeQuantOptions` in the union `BuiltinOptions`
            FakeQuantOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `PackOptions` in the union `BuiltinOptions`
            PackOptions(::planus::alloc::boxed::Box<self::PackOptions>),

            /// The variant `LogicalOrOptions` in the union `BuiltinOptions`
            LogicalOrOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `OneHotOptions` in the union `BuiltinOptions`
            OneHotOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `LogicalAndOptions` in the union `BuiltinOptions`
            LogicalAndOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `LogicalNotOptions` in the union `BuiltinOptions`
            LogicalNotOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `UnpackOptions` in the union `BuiltinOptions`
            UnpackOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `FloorDivOptions` in the union `BuiltinOptions`
            FloorDivOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SquareOptions` in the union `BuiltinOptions`
            SquareOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ZerosLikeOptions` in the union `BuiltinOptions`
            ZerosLikeOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `FillOptions` in the union `BuiltinOptions`
            FillOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `BidirectionalSequenceLSTMOptions` in the union `BuiltinOptions`
            BidirectionalSequenceLstmOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `BidirectionalSequenceRNNOptions` in the union `BuiltinOptions`
            BidirectionalSequenceRnnOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `UnidirectionalSequenceLSTMOptions` in the union `BuiltinOptions`
            UnidirectionalSequenceLstmOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `FloorModOptions` in the union `BuiltinOptions`
            FloorModOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `RangeOptions` in the union `BuiltinOptions`
            RangeOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant of type `ResizeNearestNeighborOptions` in the union `BuiltinOptions`
            ResizeNearestNeighborOptions(
                ::planus::alloc::boxed::Box<self::ResizeNearestNeighborOptions>,
            ),

            /// The variant `LeakyReluOptions` in the union `BuiltinOptions`
            LeakyReluOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SquaredDifferenceOptions` in the union `BuiltinOptions`
            SquaredDifferenceOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `MirrorPadOptions` in the union `BuiltinOptions`
            MirrorPadOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `AbsOptions` in the union `BuiltinOptions`
            AbsOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SplitVOptions` in the union `BuiltinOptions`
            SplitVOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `UniqueOptions` in the union `BuiltinOptions`
            UniqueOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ReverseV2Options` in the union `BuiltinOptions`
            ReverseV2Options(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `AddNOptions` in the union `BuiltinOptions`
            AddNOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `GatherNdOptions` in the union `BuiltinOptions`
            GatherNdOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `CosOptions` in the union `BuiltinOptions`
            CosOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `WhereOptions` in the union `BuiltinOptions`
            WhereOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `RankOptions` in the union `BuiltinOptions`
            RankOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ReverseSequenceOptions` in the union `BuiltinOptions`
            ReverseSequenceOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `MatrixDiagOptions` in the union `BuiltinOptions`
            MatrixDiagOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `QuantizeOptions` in the union `BuiltinOptions`
            QuantizeOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `MatrixSetDiagOptions` in the union `BuiltinOptions`
            MatrixSetDiagOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `HardSwishOptions` in the union `BuiltinOptions`
            HardSwishOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `IfOptions` in the union `BuiltinOptions`
            IfOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `WhileOptions` in the union `BuiltinOptions`
            WhileOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `DepthToSpaceOptions` in the union `BuiltinOptions`
            DepthToSpaceOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `NonMaxSuppressionV4Options` in the union `BuiltinOptions`
            NonMaxSuppressionV4Options(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `NonMaxSuppressionV5Options` in the union `BuiltinOptions`
            NonMaxSuppressionV5Options(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ScatterNdOptions` in the union `BuiltinOptions`
            ScatterNdOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SelectV2Options` in the union `BuiltinOptions`
            SelectV2Options(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `DensifyOptions` in the union `BuiltinOptions`
            DensifyOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SegmentSumOptions` in the union `BuiltinOptions`
            SegmentSumOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `BatchMatMulOptions` in the union `BuiltinOptions`
            BatchMatMulOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `CumsumOptions` in the union `BuiltinOptions`
            CumsumOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `CallOnceOptions` in the union `BuiltinOptions`
            CallOnceOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `BroadcastToOptions` in the union `BuiltinOptions`
            BroadcastToOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `Rfft2dOptions` in the union `BuiltinOptions`
            Rfft2dOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `Conv3DOptions` in the union `BuiltinOptions`
            Conv3DOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `HashtableOptions` in the union `BuiltinOptions`
            HashtableOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `HashtableFindOptions` in the union `BuiltinOptions`
            HashtableFindOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `HashtableImportOptions` in the union `BuiltinOptions`
            HashtableImportOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `HashtableSizeOptions` in the union `BuiltinOptions`
            HashtableSizeOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `VarHandleOptions` in the union `BuiltinOptions`
            VarHandleOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ReadVariableOptions` in the union `BuiltinOptions`
            ReadVariableOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `AssignVariableOptions` in the union `BuiltinOptions`
            AssignVariableOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `RandomOptions` in the union `BuiltinOptions`
            RandomOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `BucketizeOptions` in the union `BuiltinOptions`
            BucketizeOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `GeluOptions` in the union `BuiltinOptions`
            GeluOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `DynamicUpdateSliceOptions` in the union `BuiltinOptions`
            DynamicUpdateSliceOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `UnsortedSegmentProdOptions` in the union `BuiltinOptions`
            UnsortedSegmentProdOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `UnsortedSegmentMaxOptions` in the union `BuiltinOptions`
            UnsortedSegmentMaxOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `UnsortedSegmentMinOptions` in the union `BuiltinOptions`
            UnsortedSegmentMinOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `UnsortedSegmentSumOptions` in the union `BuiltinOptions`
            UnsortedSegmentSumOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `ATan2Options` in the union `BuiltinOptions`
            ATan2Options(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `SignOptions` in the union `BuiltinOptions`
            SignOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `BitcastOptions` in the union `BuiltinOptions`
            BitcastOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `BitwiseXorOptions` in the union `BuiltinOptions`
            BitwiseXorOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),

            /// The variant `RightShiftOptions` in the union `BuiltinOptions`
            RightShiftOptions(::planus::alloc::boxed::Box<self::UnreadOptions>),
        }

        impl BuiltinOptions {
            /// Creates a [BuiltinOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> BuiltinOptionsBuilder<::planus::Uninitialized> {
                BuiltinOptionsBuilder(::planus::Uninitialized)
            }

            #[inline]
            pub fn create_conv2_d_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::Conv2DOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(1, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_depthwise_conv2_d_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::DepthwiseConv2DOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(2, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_concat_embeddings_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(3, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_lsh_projection_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(4, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pool2_d_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::Pool2DOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(5, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_svdf_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(6, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_rnn_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(7, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_fully_connected_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::FullyConnectedOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(8, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_softmax_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::SoftmaxOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(9, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_concatenation_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::ConcatenationOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(10, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_add_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(11, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_l2_norm_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(12, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_local_response_normalization_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(13, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_lstm_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(14, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_resize_bilinear_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::ResizeBilinearOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(15, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_call_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(16, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_reshape_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::ReshapeOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(17, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_skip_gram_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(18, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_space_to_depth_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(19, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_embedding_lookup_sparse_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(20, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_mul_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(21, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pad_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(22, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_gather_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(23, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_batch_to_space_nd_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(24, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_space_to_batch_nd_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(25, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_transpose_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(26, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_reducer_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::ReducerOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(27, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_sub_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(28, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_div_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(29, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_squeeze_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::SqueezeOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(30, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_sequence_rnn_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(31, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_strided_slice_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::StridedSliceOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(32, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_exp_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(33, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_top_kv2_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(34, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_split_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::SplitOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(35, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_log_softmax_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(36, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_cast_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(37, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_dequantize_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(38, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_maximum_minimum_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(39, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_arg_max_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(40, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_less_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(41, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_neg_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(42, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pad_v2_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(43, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_greater_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(44, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_greater_equal_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(45, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_less_equal_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(46, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_select_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(47, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_slice_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(48, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_transpose_conv_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::TransposeConvOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(49, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_sparse_to_dense_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(50, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_tile_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(51, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_expand_dims_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(52, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_equal_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(53, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_not_equal_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(54, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_shape_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(55, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pow_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(56, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_arg_min_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(57, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_fake_quant_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(58, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pack_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::PackOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(59, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_logical_or_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(60, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_one_hot_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(61, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_logical_and_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(62, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_logical_not_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(63, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unpack_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(64, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_floor_div_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(65, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_square_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(66, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_zeros_like_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(67, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_fill_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(68, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_bidirectional_sequence_lstm_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(69, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_bidirectional_sequence_rnn_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(70, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unidirectional_sequence_lstm_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(71, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_floor_mod_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(72, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_range_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(73, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_resize_nearest_neighbor_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::ResizeNearestNeighborOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(74, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_leaky_relu_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(75, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_squared_difference_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(76, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_mirror_pad_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(77, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_abs_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(78, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_split_v_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(79, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unique_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(80, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_reverse_v2_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(81, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_add_n_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(82, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_gather_nd_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(83, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_cos_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(84, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_where_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(85, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_rank_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(86, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_reverse_sequence_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(87, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_matrix_diag_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(88, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_quantize_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(89, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_matrix_set_diag_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(90, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_hard_swish_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(91, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_if_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(92, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_while_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(93, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_depth_to_space_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(94, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_non_max_suppression_v4_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(95, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_non_max_suppression_v5_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(96, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_scatter_nd_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(97, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_select_v2_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(98, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_densify_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(99, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_segment_sum_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(100, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_batch_mat_mul_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(101, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_cumsum_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(102, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_call_once_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(103, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_broadcast_to_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(104, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_rfft2d_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(105, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_conv3_d_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(106, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_hashtable_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(107, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_hashtable_find_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(108, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_hashtable_import_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(109, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_hashtable_size_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(110, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_var_handle_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(111, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_read_variable_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(112, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_assign_variable_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(113, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_random_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(114, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_bucketize_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(115, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_gelu_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(116, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_dynamic_update_slice_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(117, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unsorted_segment_prod_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(118, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unsorted_segment_max_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(119, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unsorted_segment_min_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(120, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unsorted_segment_sum_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(121, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_a_tan2_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(122, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_sign_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(123, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_bitcast_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(124, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_bitwise_xor_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(125, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_right_shift_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::UnreadOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(126, value.prepare(builder).downcast())
            }
        }

        impl ::planus::WriteAsUnion<BuiltinOptions> for BuiltinOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::UnionOffset<Self> {
                match self {
                    Self::Conv2DOptions(value) => Self::create_conv2_d_options(builder, value),
                    Self::DepthwiseConv2DOptions(value) => {
                        Self::create_depthwise_conv2_d_options(builder, value)
                    }
                    Self::ConcatEmbeddingsOptions(value) => {
                        Self::create_concat_embeddings_options(builder, value)
                    }
                    Self::LshProjectionOptions(value) => {
                        Self::create_lsh_projection_options(builder, value)
                    }
                    Self::Pool2DOptions(value) => Self::create_pool2_d_options(builder, value),
                    Self::SvdfOptions(value) => Self::create_svdf_options(builder, value),
                    Self::RnnOptions(value) => Self::create_rnn_options(builder, value),
                    Self::FullyConnectedOptions(value) => {
                        Self::create_fully_connected_options(builder, value)
                    }
                    Self::SoftmaxOptions(value) => Self::create_softmax_options(builder, value),
                    Self::ConcatenationOptions(value) => {
                        Self::create_concatenation_options(builder, value)
                    }
                    Self::AddOptions(value) => Self::create_add_options(builder, value),
                    Self::L2NormOptions(value) => Self::create_l2_norm_options(builder, value),
                    Self::LocalResponseNormalizationOptions(value) => {
                        Self::create_local_response_normalization_options(builder, value)
                    }
                    Self::LstmOptions(value) => Self::create_lstm_options(builder, value),
                    Self::ResizeBilinearOptions(value) => {
                        Self::create_resize_bilinear_options(builder, value)
                    }
                    Self::CallOptions(value) => Self::create_call_options(builder, value),
                    Self::ReshapeOptions(value) => Self::create_reshape_options(builder, value),
                    Self::SkipGramOptions(value) => Self::create_skip_gram_options(builder, value),
                    Self::SpaceToDepthOptions(value) => {
                        Self::create_space_to_depth_options(builder, value)
                    }
                    Self::EmbeddingLookupSparseOptions(value) => {
                        Self::create_embedding_lookup_sparse_options(builder, value)
                    }
                    Self::MulOptions(value) => Self::create_mul_options(builder, value),
                    Self::PadOptions(value) => Self::create_pad_options(builder, value),
                    Self::GatherOptions(value) => Self::create_gather_options(builder, value),
                    Self::BatchToSpaceNdOptions(value) => {
                        Self::create_batch_to_space_nd_options(builder, value)
                    }
                    Self::SpaceToBatchNdOptions(value) => {
                        Self::create_space_to_batch_nd_options(builder, value)
                    }
                    Self::TransposeOptions(value) => Self::create_transpose_options(builder, value),
                    Self::ReducerOptions(value) => Self::create_reducer_options(builder, value),
                    Self::SubOptions(value) => Self::create_sub_options(builder, value),
                    Self::DivOptions(value) => Self::create_div_options(builder, value),
                    Self::SqueezeOptions(value) => Self::create_squeeze_options(builder, value),
                    Self::SequenceRnnOptions(value) => {
                        Self::create_sequence_rnn_options(builder, value)
                    }
                    Self::StridedSliceOptions(value) => {
                        Self::create_strided_slice_options(builder, value)
                    }
                    Self::ExpOptions(value) => Self::create_exp_options(builder, value),
                    Self::TopKv2Options(value) => Self::create_top_kv2_options(builder, value),
                    Self::SplitOptions(value) => Self::create_split_options(builder, value),
                    Self::LogSoftmaxOptions(value) => {
                        Self::create_log_softmax_options(builder, value)
                    }
                    Self::CastOptions(value) => Self::create_cast_options(builder, value),
                    Self::DequantizeOptions(value) => {
                        Self::create_dequantize_options(builder, value)
                    }
                    Self::MaximumMinimumOptions(value) => {
                        Self::create_maximum_minimum_options(builder, value)
                    }
                    Self::ArgMaxOptions(value) => Self::create_arg_max_options(builder, value),
                    Self::LessOptions(value) => Self::create_less_options(builder, value),
                    Self::NegOptions(value) => Self::create_neg_options(builder, value),
                    Self::PadV2Options(value) => Self::create_pad_v2_options(builder, value),
                    Self::GreaterOptions(value) => Self::create_greater_options(builder, value),
                    Self::GreaterEqualOptions(value) => {
                        Self::create_greater_equal_options(builder, value)
                    }
                    Self::LessEqualOptions(value) => {
                        Self::create_less_equal_options(builder, value)
                    }
                    Self::SelectOptions(value) => Self::create_select_options(builder, value),
                    Self::SliceOptions(value) => Self::create_slice_options(builder, value),
                    Self::TransposeConvOptions(value) => {
                        Self::create_transpose_conv_options(builder, value)
                    }
                    Self::SparseToDenseOptions(value) => {
                        Self::create_sparse_to_dense_options(builder, value)
                    }
                    Self::TileOptions(value) => Self::create_tile_options(builder, value),
                    Self::ExpandDimsOptions(value) => {
                        Self::create_expand_dims_options(builder, value)
                    }
                    Self::EqualOptions(value) => Self::create_equal_options(builder, value),
                    Self::NotEqualOptions(value) => Self::create_not_equal_options(builder, value),
                    Self::ShapeOptions(value) => Self::create_shape_options(builder, value),
                    Self::PowOptions(value) => Self::create_pow_options(builder, value),
                    Self::ArgMinOptions(value) => Self::create_arg_min_options(builder, value),
                    Self::FakeQuantOptions(value) => {
                        Self::create_fake_quant_options(builder, value)
                    }
                    Self::PackOptions(value) => Self::create_pack_options(builder, value),
                    Self::LogicalOrOptions(value) => {
                        Self::create_logical_or_options(builder, value)
                    }
                    Self::OneHotOptions(value) => Self::create_one_hot_options(builder, value),
                    Self::LogicalAndOptions(value) => {
                        Self::create_logical_and_options(builder, value)
                    }
                    Self::LogicalNotOptions(value) => {
                        Self::create_logical_not_options(builder, value)
                    }
                    Self::UnpackOptions(value) => Self::create_unpack_options(builder, value),
                    Self::FloorDivOptions(value) => Self::create_floor_div_options(builder, value),
                    Self::SquareOptions(value) => Self::create_square_options(builder, value),
                    Self::ZerosLikeOptions(value) => {
                        Self::create_zeros_like_options(builder, value)
                    }
                    Self::FillOptions(value) => Self::create_fill_options(builder, value),
                    Self::BidirectionalSequenceLstmOptions(value) => {
                        Self::create_bidirectional_sequence_lstm_options(builder, value)
                    }
                    Self::BidirectionalSequenceRnnOptions(value) => {
                        Self::create_bidirectional_sequence_rnn_options(builder, value)
                    }
                    Self::UnidirectionalSequenceLstmOptions(value) => {
                        Self::create_unidirectional_sequence_lstm_options(builder, value)
                    }
                    Self::FloorModOptions(value) => Self::create_floor_mod_options(builder, value),
                    Self::RangeOptions(value) => Self::create_range_options(builder, value),
                    Self::ResizeNearestNeighborOptions(value) => {
                        Self::create_resize_nearest_neighbor_options(builder, value)
                    }
                    Self::LeakyReluOptions(value) => {
                        Self::create_leaky_relu_options(builder, value)
                    }
                    Self::SquaredDifferenceOptions(value) => {
                        Self::create_squared_difference_options(builder, value)
                    }
                    Self::MirrorPadOptions(value) => {
                        Self::create_mirror_pad_options(builder, value)
                    }
                    Self::AbsOptions(value) => Self::create_abs_options(builder, value),
                    Self::SplitVOptions(value) => Self::create_split_v_options(builder, value),
                    Self::UniqueOptions(value) => Self::create_unique_options(builder, value),
                    Self::ReverseV2Options(value) => {
                        Self::create_reverse_v2_options(builder, value)
                    }
                    Self::AddNOptions(value) => Self::create_add_n_options(builder, value),
                    Self::GatherNdOptions(value) => Self::create_gather_nd_options(builder, value),
                    Self::CosOptions(value) => Self::create_cos_options(builder, value),
                    Self::WhereOptions(value) => Self::create_where_options(builder, value),
                    Self::RankOptions(value) => Self::create_rank_options(builder, value),
                    Self::ReverseSequenceOptions(value) => {
                        Self::create_reverse_sequence_options(builder, value)
                    }
                    Self::MatrixDiagOptions(value) => {
                        Self::create_matrix_diag_options(builder, value)
                    }
                    Self::QuantizeOptions(value) => Self::create_quantize_options(builder, value),
                    Self::MatrixSetDiagOptions(value) => {
                        Self::create_matrix_set_diag_options(builder, value)
                    }
                    Self::HardSwishOptions(value) => {
                        Self::create_hard_swish_options(builder, value)
                    }
                    Self::IfOptions(value) => Self::create_if_options(builder, value),
                    Self::WhileOptions(value) => Self::create_while_options(builder, value),
                    Self::DepthToSpaceOptions(value) => {
                        Self::create_depth_to_space_options(builder, value)
                    }
                    Self::NonMaxSuppressionV4Options(value) => {
                        Self::create_non_max_suppression_v4_options(builder, value)
                    }
                    Self::NonMaxSuppressionV5Options(value) => {
                        Self::create_non_max_suppression_v5_options(builder, value)
                    }
                    Self::ScatterNdOptions(value) => {
                        Self::create_scatter_nd_options(builder, value)
                    }
                    Self::SelectV2Options(value) => Self::create_select_v2_options(builder, value),
                    Self::DensifyOptions(value) => Self::create_densify_options(builder, value),
                    Self::SegmentSumOptions(value) => {
                        Self::create_segment_sum_options(builder, value)
                    }
                    Self::BatchMatMulOptions(value) => {
                        Self::create_batch_mat_mul_options(builder, value)
                    }
                    Self::CumsumOptions(value) => Self::create_cumsum_options(builder, value),
                    Self::CallOnceOptions(value) => Self::create_call_once_options(builder, value),
                    Self::BroadcastToOptions(value) => {
                        Self::create_broadcast_to_options(builder, value)
                    }
                    Self::Rfft2dOptions(value) => Self::create_rfft2d_options(builder, value),
                    Self::Conv3DOptions(value) => Self::create_conv3_d_options(builder, value),
                    Self::HashtableOptions(value) => Self::create_hashtable_options(builder, value),
                    Self::HashtableFindOptions(value) => {
                        Self::create_hashtable_find_options(builder, value)
                    }
                    Self::HashtableImportOptions(value) => {
                        Self::create_hashtable_import_options(builder, value)
                    }
                    Self::HashtableSizeOptions(value) => {
                        Self::create_hashtable_size_options(builder, value)
                    }
                    Self::VarHandleOptions(value) => {
                        Self::create_var_handle_options(builder, value)
                    }
                    Self::ReadVariableOptions(value) => {
                        Self::create_read_variable_options(builder, value)
                    }
                    Self::AssignVariableOptions(value) => {
                        Self::create_assign_variable_options(builder, value)
                    }
                    Self::RandomOptions(value) => Self::create_random_options(builder, value),
                    Self::BucketizeOptions(value) => Self::create_bucketize_options(builder, value),
                    Self::GeluOptions(value) => Self::create_gelu_options(builder, value),
                    Self::DynamicUpdateSliceOptions(value) => {
                        Self::create_dynamic_update_slice_options(builder, value)
                    }
                    Self::UnsortedSegmentProdOptions(value) => {
                        Self::create_unsorted_segment_prod_options(builder, value)
                    }
                    Self::UnsortedSegmentMaxOptions(value) => {
                        Self::create_unsorted_segment_max_options(builder, value)
                    }
                    Self::UnsortedSegmentMinOptions(value) => {
                        Self::create_unsorted_segment_min_options(builder, value)
                    }
                    Self::UnsortedSegmentSumOptions(value) => {
                        Self::create_unsorted_segment_sum_options(builder, value)
                    }
                    Self::ATan2Options(value) => Self::create_a_tan2_options(builder, value),
                    Self::SignOptions(value) => Self::create_sign_options(builder, value),
                    Self::BitcastOptions(value) => Self::create_bitcast_options(builder, value),
                    Self::BitwiseXorOptions(value) => {
                        Self::create_bitwise_xor_options(builder, value)
                    }
                    Self::RightShiftOptions(value) => {
                        Self::create_right_shift_options(builder, value)
                    }
                }
            }
        }

        impl ::planus::WriteAsOptionalUnion<BuiltinOptions> for BuiltinOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<Self>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }

        /// Builder for serializing an instance of the [BuiltinOptions] type.
        ///
        /// Can be created using the [BuiltinOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct BuiltinOptionsBuilder<T>(T);

        impl BuiltinOptionsBuilder<::planus::Uninitialized> {
            /// Creates an instance of the [`Conv2DOptions` variant](BuiltinOptions#variant.Conv2DOptions).
            #[inline]
            pub fn conv2_d_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<1, T>>
            where
                T: ::planus::WriteAsOffset<self::Conv2DOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DepthwiseConv2DOptions` variant](BuiltinOptions#variant.DepthwiseConv2DOptions).
            #[inline]
            pub fn depthwise_conv2_d_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<2, T>>
            where
                T: ::planus::WriteAsOffset<self::DepthwiseConv2DOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ConcatEmbeddingsOptions` variant](BuiltinOptions#variant.ConcatEmbeddingsOptions).
            #[inline]
            pub fn concat_embeddings_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<3, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LSHProjectionOptions` variant](BuiltinOptions#variant.LshProjectionOptions).
            #[inline]
            pub fn lsh_projection_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<4, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`Pool2DOptions` variant](BuiltinOptions#variant.Pool2DOptions).
            #[inline]
            pub fn pool2_d_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<5, T>>
            where
                T: ::planus::WriteAsOffset<self::Pool2DOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SVDFOptions` variant](BuiltinOptions#variant.SvdfOptions).
            #[inline]
            pub fn svdf_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<6, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`RNNOptions` variant](BuiltinOptions#variant.RnnOptions).
            #[inline]
            pub fn rnn_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<7, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FullyConnectedOptions` variant](BuiltinOptions#variant.FullyConnectedOptions).
            #[inline]
            pub fn fully_connected_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<8, T>>
            where
                T: ::planus::WriteAsOffset<self::FullyConnectedOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SoftmaxOptions` variant](BuiltinOptions#variant.SoftmaxOptions).
            #[inline]
            pub fn softmax_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<9, T>>
            where
                T: ::planus::WriteAsOffset<self::SoftmaxOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ConcatenationOptions` variant](BuiltinOptions#variant.ConcatenationOptions).
            #[inline]
            pub fn concatenation_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<10, T>>
            where
                T: ::planus::WriteAsOffset<self::ConcatenationOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`AddOptions` variant](BuiltinOptions#variant.AddOptions).
            #[inline]
            pub fn add_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<11, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`L2NormOptions` variant](BuiltinOptions#variant.L2NormOptions).
            #[inline]
            pub fn l2_norm_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<12, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LocalResponseNormalizationOptions` variant](BuiltinOptions#variant.LocalResponseNormalizationOptions).
            #[inline]
            pub fn local_response_normalization_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<13, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LSTMOptions` variant](BuiltinOptions#variant.LstmOptions).
            #[inline]
            pub fn lstm_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<14, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ResizeBilinearOptions` variant](BuiltinOptions#variant.ResizeBilinearOptions).
            #[inline]
            pub fn resize_bilinear_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<15, T>>
            where
                T: ::planus::WriteAsOffset<self::ResizeBilinearOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`CallOptions` variant](BuiltinOptions#variant.CallOptions).
            #[inline]
            pub fn call_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<16, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ReshapeOptions` variant](BuiltinOptions#variant.ReshapeOptions).
            #[inline]
            pub fn reshape_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<17, T>>
            where
                T: ::planus::WriteAsOffset<self::ReshapeOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SkipGramOptions` variant](BuiltinOptions#variant.SkipGramOptions).
            #[inline]
            pub fn skip_gram_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<18, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SpaceToDepthOptions` variant](BuiltinOptions#variant.SpaceToDepthOptions).
            #[inline]
            pub fn space_to_depth_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<19, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`EmbeddingLookupSparseOptions` variant](BuiltinOptions#variant.EmbeddingLookupSparseOptions).
            #[inline]
            pub fn embedding_lookup_sparse_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<20, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`MulOptions` variant](BuiltinOptions#variant.MulOptions).
            #[inline]
            pub fn mul_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<21, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`PadOptions` variant](BuiltinOptions#variant.PadOptions).
            #[inline]
            pub fn pad_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<22, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`GatherOptions` variant](BuiltinOptions#variant.GatherOptions).
            #[inline]
            pub fn gather_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<23, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BatchToSpaceNDOptions` variant](BuiltinOptions#variant.BatchToSpaceNdOptions).
            #[inline]
            pub fn batch_to_space_nd_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<24, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SpaceToBatchNDOptions` variant](BuiltinOptions#variant.SpaceToBatchNdOptions).
            #[inline]
            pub fn space_to_batch_nd_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<25, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`TransposeOptions` variant](BuiltinOptions#variant.TransposeOptions).
            #[inline]
            pub fn transpose_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<26, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ReducerOptions` variant](BuiltinOptions#variant.ReducerOptions).
            #[inline]
            pub fn reducer_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<27, T>>
            where
                T: ::planus::WriteAsOffset<self::ReducerOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SubOptions` variant](BuiltinOptions#variant.SubOptions).
            #[inline]
            pub fn sub_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<28, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DivOptions` variant](BuiltinOptions#variant.DivOptions).
            #[inline]
            pub fn div_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<29, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SqueezeOptions` variant](BuiltinOptions#variant.SqueezeOptions).
            #[inline]
            pub fn squeeze_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<30, T>>
            where
                T: ::planus::WriteAsOffset<self::SqueezeOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SequenceRNNOptions` variant](BuiltinOptions#variant.SequenceRnnOptions).
            #[inline]
            pub fn sequence_rnn_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<31, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`StridedSliceOptions` variant](BuiltinOptions#variant.StridedSliceOptions).
            #[inline]
            pub fn strided_slice_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<32, T>>
            where
                T: ::planus::WriteAsOffset<self::StridedSliceOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ExpOptions` variant](BuiltinOptions#variant.ExpOptions).
            #[inline]
            pub fn exp_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<33, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`TopKV2Options` variant](BuiltinOptions#variant.TopKv2Options).
            #[inline]
            pub fn top_kv2_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<34, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SplitOptions` variant](BuiltinOptions#variant.SplitOptions).
            #[inline]
            pub fn split_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<35, T>>
            where
                T: ::planus::WriteAsOffset<self::SplitOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LogSoftmaxOptions` variant](BuiltinOptions#variant.LogSoftmaxOptions).
            #[inline]
            pub fn log_softmax_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<36, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`CastOptions` variant](BuiltinOptions#variant.CastOptions).
            #[inline]
            pub fn cast_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<37, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DequantizeOptions` variant](BuiltinOptions#variant.DequantizeOptions).
            #[inline]
            pub fn dequantize_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<38, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`MaximumMinimumOptions` variant](BuiltinOptions#variant.MaximumMinimumOptions).
            #[inline]
            pub fn maximum_minimum_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<39, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ArgMaxOptions` variant](BuiltinOptions#variant.ArgMaxOptions).
            #[inline]
            pub fn arg_max_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<40, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LessOptions` variant](BuiltinOptions#variant.LessOptions).
            #[inline]
            pub fn less_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<41, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`NegOptions` variant](BuiltinOptions#variant.NegOptions).
            #[inline]
            pub fn neg_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<42, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`PadV2Options` variant](BuiltinOptions#variant.PadV2Options).
            #[inline]
            pub fn pad_v2_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<43, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`GreaterOptions` variant](BuiltinOptions#variant.GreaterOptions).
            #[inline]
            pub fn greater_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<44, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`GreaterEqualOptions` variant](BuiltinOptions#variant.GreaterEqualOptions).
            #[inline]
            pub fn greater_equal_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<45, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LessEqualOptions` variant](BuiltinOptions#variant.LessEqualOptions).
            #[inline]
            pub fn less_equal_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<46, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SelectOptions` variant](BuiltinOptions#variant.SelectOptions).
            #[inline]
            pub fn select_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<47, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SliceOptions` variant](BuiltinOptions#variant.SliceOptions).
            #[inline]
            pub fn slice_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<48, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`TransposeConvOptions` variant](BuiltinOptions#variant.TransposeConvOptions).
            #[inline]
            pub fn transpose_conv_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<49, T>>
            where
                T: ::planus::WriteAsOffset<self::TransposeConvOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SparseToDenseOptions` variant](BuiltinOptions#variant.SparseToDenseOptions).
            #[inline]
            pub fn sparse_to_dense_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<50, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`TileOptions` variant](BuiltinOptions#variant.TileOptions).
            #[inline]
            pub fn tile_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<51, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ExpandDimsOptions` variant](BuiltinOptions#variant.ExpandDimsOptions).
            #[inline]
            pub fn expand_dims_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<52, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`EqualOptions` variant](BuiltinOptions#variant.EqualOptions).
            #[inline]
            pub fn equal_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<53, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`NotEqualOptions` variant](BuiltinOptions#variant.NotEqualOptions).
            #[inline]
            pub fn not_equal_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<54, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ShapeOptions` variant](BuiltinOptions#variant.ShapeOptions).
            #[inline]
            pub fn shape_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<55, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`PowOptions` variant](BuiltinOptions#variant.PowOptions).
            #[inline]
            pub fn pow_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<56, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ArgMinOptions` variant](BuiltinOptions#variant.ArgMinOptions).
            #[inline]
            pub fn arg_min_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<57, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FakeQuantOptions` variant](BuiltinOptions#variant.FakeQuantOptions).
            #[inline]
            pub fn fake_quant_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<58, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`PackOptions` variant](BuiltinOptions#variant.PackOptions).
            #[inline]
            pub fn pack_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<59, T>>
            where
                T: ::planus::WriteAsOffset<self::PackOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LogicalOrOptions` variant](BuiltinOptions#variant.LogicalOrOptions).
            #[inline]
            pub fn logical_or_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<60, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`OneHotOptions` variant](BuiltinOptions#variant.OneHotOptions).
            #[inline]
            pub fn one_hot_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<61, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LogicalAndOptions` variant](BuiltinOptions#variant.LogicalAndOptions).
            #[inline]
            pub fn logical_and_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<62, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LogicalNotOptions` variant](BuiltinOptions#variant.LogicalNotOptions).
            #[inline]
            pub fn logical_not_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<63, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UnpackOptions` variant](BuiltinOptions#variant.UnpackOptions).
            #[inline]
            pub fn unpack_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<64, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FloorDivOptions` variant](BuiltinOptions#variant.FloorDivOptions).
            #[inline]
            pub fn floor_div_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<65, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SquareOptions` variant](BuiltinOptions#variant.SquareOptions).
            #[inline]
            pub fn square_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<66, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ZerosLikeOptions` variant](BuiltinOptions#variant.ZerosLikeOptions).
            #[inline]
            pub fn zeros_like_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<67, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FillOptions` variant](BuiltinOptions#variant.FillOptions).
            #[inline]
            pub fn fill_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<68, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BidirectionalSequenceLSTMOptions` variant](BuiltinOptions#variant.BidirectionalSequenceLstmOptions).
            #[inline]
            pub fn bidirectional_sequence_lstm_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<69, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BidirectionalSequenceRNNOptions` variant](BuiltinOptions#variant.BidirectionalSequenceRnnOptions).
            #[inline]
            pub fn bidirectional_sequence_rnn_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<70, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UnidirectionalSequenceLSTMOptions` variant](BuiltinOptions#variant.UnidirectionalSequenceLstmOptions).
            #[inline]
            pub fn unidirectional_sequence_lstm_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<71, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FloorModOptions` variant](BuiltinOptions#variant.FloorModOptions).
            #[inline]
            pub fn floor_mod_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<72, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`RangeOptions` variant](BuiltinOptions#variant.RangeOptions).
            #[inline]
            pub fn range_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<73, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ResizeNearestNeighborOptions` variant](BuiltinOptions#variant.ResizeNearestNeighborOptions).
            #[inline]
            pub fn resize_nearest_neighbor_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<74, T>>
            where
                T: ::planus::WriteAsOffset<self::ResizeNearestNeighborOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LeakyReluOptions` variant](BuiltinOptions#variant.LeakyReluOptions).
            #[inline]
            pub fn leaky_relu_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<75, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SquaredDifferenceOptions` variant](BuiltinOptions#variant.SquaredDifferenceOptions).
            #[inline]
            pub fn squared_difference_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<76, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`MirrorPadOptions` variant](BuiltinOptions#variant.MirrorPadOptions).
            #[inline]
            pub fn mirror_pad_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<77, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`AbsOptions` variant](BuiltinOptions#variant.AbsOptions).
            #[inline]
            pub fn abs_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<78, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SplitVOptions` variant](BuiltinOptions#variant.SplitVOptions).
            #[inline]
            pub fn split_v_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<79, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UniqueOptions` variant](BuiltinOptions#variant.UniqueOptions).
            #[inline]
            pub fn unique_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<80, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ReverseV2Options` variant](BuiltinOptions#variant.ReverseV2Options).
            #[inline]
            pub fn reverse_v2_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<81, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`AddNOptions` variant](BuiltinOptions#variant.AddNOptions).
            #[inline]
            pub fn add_n_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<82, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`GatherNdOptions` variant](BuiltinOptions#variant.GatherNdOptions).
            #[inline]
            pub fn gather_nd_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<83, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`CosOptions` variant](BuiltinOptions#variant.CosOptions).
            #[inline]
            pub fn cos_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<84, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`WhereOptions` variant](BuiltinOptions#variant.WhereOptions).
            #[inline]
            pub fn where_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<85, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`RankOptions` variant](BuiltinOptions#variant.RankOptions).
            #[inline]
            pub fn rank_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<86, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ReverseSequenceOptions` variant](BuiltinOptions#variant.ReverseSequenceOptions).
            #[inline]
            pub fn reverse_sequence_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<87, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`MatrixDiagOptions` variant](BuiltinOptions#variant.MatrixDiagOptions).
            #[inline]
            pub fn matrix_diag_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<88, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`QuantizeOptions` variant](BuiltinOptions#variant.QuantizeOptions).
            #[inline]
            pub fn quantize_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<89, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`MatrixSetDiagOptions` variant](BuiltinOptions#variant.MatrixSetDiagOptions).
            #[inline]
            pub fn matrix_set_diag_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<90, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`HardSwishOptions` variant](BuiltinOptions#variant.HardSwishOptions).
            #[inline]
            pub fn hard_swish_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<91, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`IfOptions` variant](BuiltinOptions#variant.IfOptions).
            #[inline]
            pub fn if_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<92, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`WhileOptions` variant](BuiltinOptions#variant.WhileOptions).
            #[inline]
            pub fn while_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<93, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DepthToSpaceOptions` variant](BuiltinOptions#variant.DepthToSpaceOptions).
            #[inline]
            pub fn depth_to_space_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<94, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`NonMaxSuppressionV4Options` variant](BuiltinOptions#variant.NonMaxSuppressionV4Options).
            #[inline]
            pub fn non_max_suppression_v4_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<95, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`NonMaxSuppressionV5Options` variant](BuiltinOptions#variant.NonMaxSuppressionV5Options).
            #[inline]
            pub fn non_max_suppression_v5_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<96, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ScatterNdOptions` variant](BuiltinOptions#variant.ScatterNdOptions).
            #[inline]
            pub fn scatter_nd_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<97, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SelectV2Options` variant](BuiltinOptions#variant.SelectV2Options).
            #[inline]
            pub fn select_v2_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<98, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DensifyOptions` variant](BuiltinOptions#variant.DensifyOptions).
            #[inline]
            pub fn densify_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<99, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SegmentSumOptions` variant](BuiltinOptions#variant.SegmentSumOptions).
            #[inline]
            pub fn segment_sum_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<100, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BatchMatMulOptions` variant](BuiltinOptions#variant.BatchMatMulOptions).
            #[inline]
            pub fn batch_mat_mul_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<101, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`CumsumOptions` variant](BuiltinOptions#variant.CumsumOptions).
            #[inline]
            pub fn cumsum_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<102, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`CallOnceOptions` variant](BuiltinOptions#variant.CallOnceOptions).
            #[inline]
            pub fn call_once_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<103, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BroadcastToOptions` variant](BuiltinOptions#variant.BroadcastToOptions).
            #[inline]
            pub fn broadcast_to_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<104, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`Rfft2dOptions` variant](BuiltinOptions#variant.Rfft2dOptions).
            #[inline]
            pub fn rfft2d_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<105, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`Conv3DOptions` variant](BuiltinOptions#variant.Conv3DOptions).
            #[inline]
            pub fn conv3_d_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<106, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`HashtableOptions` variant](BuiltinOptions#variant.HashtableOptions).
            #[inline]
            pub fn hashtable_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<107, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`HashtableFindOptions` variant](BuiltinOptions#variant.HashtableFindOptions).
            #[inline]
            pub fn hashtable_find_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<108, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`HashtableImportOptions` variant](BuiltinOptions#variant.HashtableImportOptions).
            #[inline]
            pub fn hashtable_import_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<109, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`HashtableSizeOptions` variant](BuiltinOptions#variant.HashtableSizeOptions).
            #[inline]
            pub fn hashtable_size_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<110, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`VarHandleOptions` variant](BuiltinOptions#variant.VarHandleOptions).
            #[inline]
            pub fn var_handle_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<111, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ReadVariableOptions` variant](BuiltinOptions#variant.ReadVariableOptions).
            #[inline]
            pub fn read_variable_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<112, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`AssignVariableOptions` variant](BuiltinOptions#variant.AssignVariableOptions).
            #[inline]
            pub fn assign_variable_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<113, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`RandomOptions` variant](BuiltinOptions#variant.RandomOptions).
            #[inline]
            pub fn random_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<114, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BucketizeOptions` variant](BuiltinOptions#variant.BucketizeOptions).
            #[inline]
            pub fn bucketize_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<115, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`GeluOptions` variant](BuiltinOptions#variant.GeluOptions).
            #[inline]
            pub fn gelu_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<116, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DynamicUpdateSliceOptions` variant](BuiltinOptions#variant.DynamicUpdateSliceOptions).
            #[inline]
            pub fn dynamic_update_slice_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<117, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UnsortedSegmentProdOptions` variant](BuiltinOptions#variant.UnsortedSegmentProdOptions).
            #[inline]
            pub fn unsorted_segment_prod_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<118, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UnsortedSegmentMaxOptions` variant](BuiltinOptions#variant.UnsortedSegmentMaxOptions).
            #[inline]
            pub fn unsorted_segment_max_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<119, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UnsortedSegmentMinOptions` variant](BuiltinOptions#variant.UnsortedSegmentMinOptions).
            #[inline]
            pub fn unsorted_segment_min_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<120, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UnsortedSegmentSumOptions` variant](BuiltinOptions#variant.UnsortedSegmentSumOptions).
            #[inline]
            pub fn unsorted_segment_sum_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<121, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ATan2Options` variant](BuiltinOptions#variant.ATan2Options).
            #[inline]
            pub fn a_tan2_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<122, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SignOptions` variant](BuiltinOptions#variant.SignOptions).
            #[inline]
            pub fn sign_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<123, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BitcastOptions` variant](BuiltinOptions#variant.BitcastOptions).
            #[inline]
            pub fn bitcast_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<124, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BitwiseXorOptions` variant](BuiltinOptions#variant.BitwiseXorOptions).
            #[inline]
            pub fn bitwise_xor_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<125, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`RightShiftOptions` variant](BuiltinOptions#variant.RightShiftOptions).
            #[inline]
            pub fn right_shift_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<126, T>>
            where
                T: ::planus::WriteAsOffset<self::UnreadOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }
        }

        impl<const N: u8, T> BuiltinOptionsBuilder<::planus::Initialized<N, T>> {
            /// Finish writing the builder to get an [UnionOffset](::planus::UnionOffset) to a serialized [BuiltinOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions>
            where
                Self: ::planus::WriteAsUnion<BuiltinOptions>,
            {
                ::planus::WriteAsUnion::prepare(&self, builder)
            }
        }

        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<1, T>>
        where
            T: ::planus::WriteAsOffset<self::Conv2DOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(1, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<1, T>>
        where
            T: ::planus::WriteAsOffset<self::Conv2DOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<2, T>>
        where
            T: ::planus::WriteAsOffset<self::DepthwiseConv2DOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(2, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<2, T>>
        where
            T: ::planus::WriteAsOffset<self::DepthwiseConv2DOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<3, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(3, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<3, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<4, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(4, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<4, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<5, T>>
        where
            T: ::planus::WriteAsOffset<self::Pool2DOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(5, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<5, T>>
        where
            T: ::planus::WriteAsOffset<self::Pool2DOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<6, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(6, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<6, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<7, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(7, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<7, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<8, T>>
        where
            T: ::planus::WriteAsOffset<self::FullyConnectedOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(8, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<8, T>>
        where
            T: ::planus::WriteAsOffset<self::FullyConnectedOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<9, T>>
        where
            T: ::planus::WriteAsOffset<self::SoftmaxOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(9, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<9, T>>
        where
            T: ::planus::WriteAsOffset<self::SoftmaxOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<10, T>>
        where
            T: ::planus::WriteAsOffset<self::ConcatenationOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(10, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<10, T>>
        where
            T: ::planus::WriteAsOffset<self::ConcatenationOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<11, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(11, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<11, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<12, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(12, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<12, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<13, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(13, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<13, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<14, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(14, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<14, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<15, T>>
        where
            T: ::planus::WriteAsOffset<self::ResizeBilinearOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(15, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<15, T>>
        where
            T: ::planus::WriteAsOffset<self::ResizeBilinearOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<16, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(16, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<16, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<17, T>>
        where
            T: ::planus::WriteAsOffset<self::ReshapeOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(17, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<17, T>>
        where
            T: ::planus::WriteAsOffset<self::ReshapeOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<18, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(18, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<18, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<19, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(19, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<19, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<20, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(20, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<20, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<21, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(21, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<21, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<22, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(22, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<22, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<23, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(23, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<23, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<24, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(24, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<24, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<25, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(25, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<25, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<26, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(26, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<26, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<27, T>>
        where
            T: ::planus::WriteAsOffset<self::ReducerOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(27, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<27, T>>
        where
            T: ::planus::WriteAsOffset<self::ReducerOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<28, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(28, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<28, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<29, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(29, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<29, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<30, T>>
        where
            T: ::planus::WriteAsOffset<self::SqueezeOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(30, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<30, T>>
        where
            T: ::planus::WriteAsOffset<self::SqueezeOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<31, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(31, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<31, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<32, T>>
        where
            T: ::planus::WriteAsOffset<self::StridedSliceOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(32, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<32, T>>
        where
            T: ::planus::WriteAsOffset<self::StridedSliceOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<33, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(33, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<33, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<34, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(34, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<34, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<35, T>>
        where
            T: ::planus::WriteAsOffset<self::SplitOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(35, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<35, T>>
        where
            T: ::planus::WriteAsOffset<self::SplitOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<36, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(36, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<36, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<37, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(37, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<37, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<38, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(38, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<38, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<39, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(39, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<39, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<40, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(40, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<40, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<41, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(41, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<41, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<42, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(42, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<42, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<43, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(43, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<43, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<44, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(44, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<44, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<45, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(45, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<45, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<46, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(46, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<46, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<47, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(47, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<47, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<48, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(48, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<48, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<49, T>>
        where
            T: ::planus::WriteAsOffset<self::TransposeConvOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(49, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<49, T>>
        where
            T: ::planus::WriteAsOffset<self::TransposeConvOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<50, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(50, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<50, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<51, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(51, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<51, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<52, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(52, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<52, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<53, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(53, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<53, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<54, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(54, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<54, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<55, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(55, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<55, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<56, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(56, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<56, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<57, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(57, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<57, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<58, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(58, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<58, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<59, T>>
        where
            T: ::planus::WriteAsOffset<self::PackOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(59, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<59, T>>
        where
            T: ::planus::WriteAsOffset<self::PackOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<60, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(60, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<60, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<61, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(61, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<61, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<62, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(62, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<62, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<63, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(63, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<63, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<64, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(64, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<64, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<65, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(65, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<65, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<66, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(66, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<66, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<67, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(67, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<67, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<68, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(68, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<68, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<69, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(69, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<69, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<70, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(70, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<70, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<71, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(71, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<71, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<72, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(72, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<72, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<73, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(73, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<73, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<74, T>>
        where
            T: ::planus::WriteAsOffset<self::ResizeNearestNeighborOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(74, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<74, T>>
        where
            T: ::planus::WriteAsOffset<self::ResizeNearestNeighborOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<75, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(75, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<75, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<76, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(76, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<76, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<77, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(77, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<77, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<78, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(78, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<78, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<79, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(79, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<79, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<80, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(80, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<80, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<81, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(81, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<81, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<82, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(82, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<82, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<83, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(83, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<83, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<84, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(84, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<84, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<85, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(85, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<85, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<86, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(86, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<86, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<87, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(87, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<87, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<88, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(88, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<88, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<89, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(89, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<89, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<90, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(90, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<90, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<91, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(91, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<91, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<92, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(92, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<92, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<93, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(93, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<93, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<94, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(94, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<94, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<95, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(95, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<95, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<96, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(96, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<96, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<97, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(97, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<97, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<98, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(98, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<98, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<99, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(99, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<99, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<100, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(100, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<100, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<101, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(101, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<101, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<102, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(102, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<102, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<103, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(103, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<103, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<104, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(104, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<104, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<105, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(105, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<105, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<106, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(106, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<106, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<107, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(107, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<107, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<108, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(108, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<108, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<109, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(109, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<109, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<110, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(110, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<110, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<111, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(111, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<111, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<112, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(112, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<112, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<113, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(113, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<113, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<114, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(114, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<114, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<115, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(115, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<115, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<116, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(116, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<116, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<117, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(117, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<117, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<118, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(118, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<118, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<119, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(119, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<119, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<120, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(120, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<120, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<121, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(121, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<121, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<122, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(122, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<122, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<123, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(123, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<123, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<124, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(124, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<124, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<125, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(125, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<125, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<126, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(126, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<126, T>>
        where
            T: ::planus::WriteAsOffset<self::UnreadOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }

        /// Reference to a deserialized [BuiltinOptions].
        #[derive(Copy, Clone, Debug)]
        pub enum BuiltinOptionsRef<'a> {
            Conv2DOptions(self::Conv2DOptionsRef<'a>),
            DepthwiseConv2DOptions(self::DepthwiseConv2DOptionsRef<'a>),
            ConcatEmbeddingsOptions(self::UnreadOptionsRef<'a>),
            LshProjectionOptions(self::UnreadOptionsRef<'a>),
            Pool2DOptions(self::Pool2DOptionsRef<'a>),
            SvdfOptions(self::UnreadOptionsRef<'a>),
            RnnOptions(self::UnreadOptionsRef<'a>),
            FullyConnectedOptions(self::FullyConnectedOptionsRef<'a>),
            SoftmaxOptions(self::SoftmaxOptionsRef<'a>),
            ConcatenationOptions(self::ConcatenationOptionsRef<'a>),
            AddOptions(self::UnreadOptionsRef<'a>),
            L2NormOptions(self::UnreadOptionsRef<'a>),
            LocalResponseNormalizationOptions(self::UnreadOptionsRef<'a>),
            LstmOptions(self::UnreadOptionsRef<'a>),
            ResizeBilinearOptions(self::ResizeBilinearOptionsRef<'a>),
            CallOptions(self::UnreadOptionsRef<'a>),
            ReshapeOptions(self::ReshapeOptionsRef<'a>),
            SkipGramOptions(self::UnreadOptionsRef<'a>),
            SpaceToDepthOptions(self::UnreadOptionsRef<'a>),
            EmbeddingLookupSparseOptions(self::UnreadOptionsRef<'a>),
            MulOptions(self::UnreadOptionsRef<'a>),
            PadOptions(self::UnreadOptionsRef<'a>),
            GatherOptions(self::UnreadOptionsRef<'a>),
            BatchToSpaceNdOptions(self::UnreadOptionsRef<'a>),
            SpaceToBatchNdOptions(self::UnreadOptionsRef<'a>),
            TransposeOptions(self::UnreadOptionsRef<'a>),
            ReducerOptions(self::ReducerOptionsRef<'a>),
            SubOptions(self::UnreadOptionsRef<'a>),
            DivOptions(self::UnreadOptionsRef<'a>),
            SqueezeOptions(self::SqueezeOptionsRef<'a>),
            SequenceRnnOptions(self::UnreadOptionsRef<'a>),
            StridedSliceOptions(self::StridedSliceOptionsRef<'a>),
            ExpOptions(self::UnreadOptionsRef<'a>),
            TopKv2Options(self::UnreadOptionsRef<'a>),
            SplitOptions(self::SplitOptionsRef<'a>),
            LogSoftmaxOptions(self::UnreadOptionsRef<'a>),
            CastOptions(self::UnreadOptionsRef<'a>),
            DequantizeOptions(self::UnreadOptionsRef<'a>),
            MaximumMinimumOptions(self::UnreadOptionsRef<'a>),
            ArgMaxOptions(self::UnreadOptionsRef<'a>),
            LessOptions(self::UnreadOptionsRef<'a>),
            NegOptions(self::UnreadOptionsRef<'a>),
            PadV2Options(self::UnreadOptionsRef<'a>),
            GreaterOptions(self::UnreadOptionsRef<'a>),
            GreaterEqualOptions(self::UnreadOptionsRef<'a>),
            LessEqualOptions(self::UnreadOptionsRef<'a>),
            SelectOptions(self::UnreadOptionsRef<'a>),
            SliceOptions(self::UnreadOptionsRef<'a>),
            TransposeConvOptions(self::TransposeConvOptionsRef<'a>),
            SparseToDenseOptions(self::UnreadOptionsRef<'a>),
            TileOptions(self::UnreadOptionsRef<'a>),
            ExpandDimsOptions(self::UnreadOptionsRef<'a>),
            EqualOptions(self::UnreadOptionsRef<'a>),
            NotEqualOptions(self::UnreadOptionsRef<'a>),
            ShapeOptions(self::UnreadOptionsRef<'a>),
            PowOptions(self::UnreadOptionsRef<'a>),
            ArgMinOptions(self::UnreadOptionsRef<'a>),
            FakeQuantOptions(self::UnreadOptionsRef<'a>),
            PackOptions(self::PackOptionsRef<'a>),
            LogicalOrOptions(self::UnreadOptionsRef<'a>),
            OneHotOptions(self::UnreadOptionsRef<'a>),
            LogicalAndOptions(self::UnreadOptionsRef<'a>),
            LogicalNotOptions(self::UnreadOptionsRef<'a>),
            UnpackOptions(self::UnreadOptionsRef<'a>),
            FloorDivOptions(self::UnreadOptionsRef<'a>),
            SquareOptions(self::UnreadOptionsRef<'a>),
            ZerosLikeOptions(self::UnreadOptionsRef<'a>),
            FillOptions(self::UnreadOptionsRef<'a>),
            BidirectionalSequenceLstmOptions(self::UnreadOptionsRef<'a>),
            BidirectionalSequenceRnnOptions(self::UnreadOptionsRef<'a>),
            UnidirectionalSequenceLstmOptions(self::UnreadOptionsRef<'a>),
            FloorModOptions(self::UnreadOptionsRef<'a>),
            RangeOptions(self::UnreadOptionsRef<'a>),
            ResizeNearestNeighborOptions(self::ResizeNearestNeighborOptionsRef<'a>),
            LeakyReluOptions(self::UnreadOptionsRef<'a>),
            SquaredDifferenceOptions(self::UnreadOptionsRef<'a>),
            MirrorPadOptions(self::UnreadOptionsRef<'a>),
            AbsOptions(self::UnreadOptionsRef<'a>),
            SplitVOptions(self::UnreadOptionsRef<'a>),
            UniqueOptions(self::UnreadOptionsRef<'a>),
            ReverseV2Options(self::UnreadOptionsRef<'a>),
            AddNOptions(self::UnreadOptionsRef<'a>),
            GatherNdOptions(self::UnreadOptionsRef<'a>),
            CosOptions(self::UnreadOptionsRef<'a>),
            WhereOptions(self::UnreadOptionsRef<'a>),
            RankOptions(self::UnreadOptionsRef<'a>),
            ReverseSequenceOptions(self::UnreadOptionsRef<'a>),
            MatrixDiagOptions(self::UnreadOptionsRef<'a>),
            QuantizeOptions(self::UnreadOptionsRef<'a>),
            MatrixSetDiagOptions(self::UnreadOptionsRef<'a>),
            HardSwishOptions(self::UnreadOptionsRef<'a>),
            IfOptions(self::UnreadOptionsRef<'a>),
            WhileOptions(self::UnreadOptionsRef<'a>),
            DepthToSpaceOptions(self::UnreadOptionsRef<'a>),
            NonMaxSuppressionV4Options(self::UnreadOptionsRef<'a>),
            NonMaxSuppressionV5Options(self::UnreadOptionsRef<'a>),
            ScatterNdOptions(self::UnreadOptionsRef<'a>),
            SelectV2Options(self::UnreadOptionsRef<'a>),
            DensifyOptions(self::UnreadOptionsRef<'a>),
            SegmentSumOptions(self::UnreadOptionsRef<'a>),
            BatchMatMulOptions(self::UnreadOptionsRef<'a>),
            CumsumOptions(self::UnreadOptionsRef<'a>),
            CallOnceOptions(self::UnreadOptionsRef<'a>),
            BroadcastToOptions(self::UnreadOptionsRef<'a>),
            Rfft2dOptions(self::UnreadOptionsRef<'a>),
            Conv3DOptions(self::UnreadOptionsRef<'a>),
            HashtableOptions(self::UnreadOptionsRef<'a>),
            HashtableFindOptions(self::UnreadOptionsRef<'a>),
            HashtableImportOptions(self::UnreadOptionsRef<'a>),
            HashtableSizeOptions(self::UnreadOptionsRef<'a>),
            VarHandleOptions(self::UnreadOptionsRef<'a>),
            ReadVariableOptions(self::UnreadOptionsRef<'a>),
            AssignVariableOptions(self::UnreadOptionsRef<'a>),
            RandomOptions(self::UnreadOptionsRef<'a>),
            BucketizeOptions(self::UnreadOptionsRef<'a>),
            GeluOptions(self::UnreadOptionsRef<'a>),
            DynamicUpdateSliceOptions(self::UnreadOptionsRef<'a>),
            UnsortedSegmentProdOptions(self::UnreadOptionsRef<'a>),
            UnsortedSegmentMaxOptions(self::UnreadOptionsRef<'a>),
            UnsortedSegmentMinOptions(self::UnreadOptionsRef<'a>),
            UnsortedSegmentSumOptions(self::UnreadOptionsRef<'a>),
            ATan2Options(self::UnreadOptionsRef<'a>),
            SignOptions(self::UnreadOptionsRef<'a>),
            BitcastOptions(self::UnreadOptionsRef<'a>),
            BitwiseXorOptions(self::UnreadOptionsRef<'a>),
            RightShiftOptions(self::UnreadOptionsRef<'a>),
        }

        impl<'a> ::core::convert::TryFrom<BuiltinOptionsRef<'a>> for BuiltinOptions {
            type Error = ::planus::Error;

            fn try_from(value: BuiltinOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(match value {
                    BuiltinOptionsRef::Conv2DOptions(value) => {
                        Self::Conv2DOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DepthwiseConv2DOptions(value) => {
                        Self::DepthwiseConv2DOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ConcatEmbeddingsOptions(value) => {
                        Self::ConcatEmbeddingsOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LshProjectionOptions(value) => {
                        Self::LshProjectionOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::Pool2DOptions(value) => {
                        Self::Pool2DOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SvdfOptions(value) => {
                        Self::SvdfOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::RnnOptions(value) => {
                        Self::RnnOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FullyConnectedOptions(value) => {
                        Self::FullyConnectedOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SoftmaxOptions(value) => {
                        Self::SoftmaxOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ConcatenationOptions(value) => {
                        Self::ConcatenationOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::AddOptions(value) => {
                        Self::AddOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::L2NormOptions(value) => {
                        Self::L2NormOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LocalResponseNormalizationOptions(value) => {
                        Self::LocalResponseNormalizationOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LstmOptions(value) => {
                        Self::LstmOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ResizeBilinearOptions(value) => {
                        Self::ResizeBilinearOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::CallOptions(value) => {
                        Self::CallOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ReshapeOptions(value) => {
                        Self::ReshapeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SkipGramOptions(value) => {
                        Self::SkipGramOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SpaceToDepthOptions(value) => {
                        Self::SpaceToDepthOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::EmbeddingLookupSparseOptions(value) => {
                        Self::EmbeddingLookupSparseOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::MulOptions(value) => {
                        Self::MulOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::PadOptions(value) => {
                        Self::PadOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::GatherOptions(value) => {
                        Self::GatherOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BatchToSpaceNdOptions(value) => {
                        Self::BatchToSpaceNdOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SpaceToBatchNdOptions(value) => {
                        Self::SpaceToBatchNdOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::TransposeOptions(value) => {
                        Self::TransposeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ReducerOptions(value) => {
                        Self::ReducerOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SubOptions(value) => {
                        Self::SubOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DivOptions(value) => {
                        Self::DivOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SqueezeOptions(value) => {
                        Self::SqueezeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SequenceRnnOptions(value) => {
                        Self::SequenceRnnOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::StridedSliceOptions(value) => {
                        Self::StridedSliceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ExpOptions(value) => {
                        Self::ExpOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::TopKv2Options(value) => {
                        Self::TopKv2Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SplitOptions(value) => {
                        Self::SplitOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LogSoftmaxOptions(value) => {
                        Self::LogSoftmaxOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::CastOptions(value) => {
                        Self::CastOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DequantizeOptions(value) => {
                        Self::DequantizeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::MaximumMinimumOptions(value) => {
                        Self::MaximumMinimumOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ArgMaxOptions(value) => {
                        Self::ArgMaxOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LessOptions(value) => {
                        Self::LessOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::NegOptions(value) => {
                        Self::NegOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::PadV2Options(value) => {
                        Self::PadV2Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::GreaterOptions(value) => {
                        Self::GreaterOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::GreaterEqualOptions(value) => {
                        Self::GreaterEqualOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LessEqualOptions(value) => {
                        Self::LessEqualOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SelectOptions(value) => {
                        Self::SelectOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SliceOptions(value) => {
                        Self::SliceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::TransposeConvOptions(value) => {
                        Self::TransposeConvOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SparseToDenseOptions(value) => {
                        Self::SparseToDenseOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::TileOptions(value) => {
                        Self::TileOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ExpandDimsOptions(value) => {
                        Self::ExpandDimsOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::EqualOptions(value) => {
                        Self::EqualOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::NotEqualOptions(value) => {
                        Self::NotEqualOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ShapeOptions(value) => {
                        Self::ShapeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::PowOptions(value) => {
                        Self::PowOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ArgMinOptions(value) => {
                        Self::ArgMinOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FakeQuantOptions(value) => {
                        Self::FakeQuantOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::PackOptions(value) => {
                        Self::PackOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LogicalOrOptions(value) => {
                        Self::LogicalOrOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::OneHotOptions(value) => {
                        Self::OneHotOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LogicalAndOptions(value) => {
                        Self::LogicalAndOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LogicalNotOptions(value) => {
                        Self::LogicalNotOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UnpackOptions(value) => {
                        Self::UnpackOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FloorDivOptions(value) => {
                        Self::FloorDivOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SquareOptions(value) => {
                        Self::SquareOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ZerosLikeOptions(value) => {
                        Self::ZerosLikeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FillOptions(value) => {
                        Self::FillOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BidirectionalSequenceLstmOptions(value) => {
                        Self::BidirectionalSequenceLstmOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BidirectionalSequenceRnnOptions(value) => {
                        Self::BidirectionalSequenceRnnOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UnidirectionalSequenceLstmOptions(value) => {
                        Self::UnidirectionalSequenceLstmOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FloorModOptions(value) => {
                        Self::FloorModOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::RangeOptions(value) => {
                        Self::RangeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ResizeNearestNeighborOptions(value) => {
                        Self::ResizeNearestNeighborOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LeakyReluOptions(value) => {
                        Self::LeakyReluOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SquaredDifferenceOptions(value) => {
                        Self::SquaredDifferenceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::MirrorPadOptions(value) => {
                        Self::MirrorPadOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::AbsOptions(value) => {
                        Self::AbsOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SplitVOptions(value) => {
                        Self::SplitVOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UniqueOptions(value) => {
                        Self::UniqueOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ReverseV2Options(value) => {
                        Self::ReverseV2Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::AddNOptions(value) => {
                        Self::AddNOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::GatherNdOptions(value) => {
                        Self::GatherNdOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::CosOptions(value) => {
                        Self::CosOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::WhereOptions(value) => {
                        Self::WhereOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::RankOptions(value) => {
                        Self::RankOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ReverseSequenceOptions(value) => {
                        Self::ReverseSequenceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::MatrixDiagOptions(value) => {
                        Self::MatrixDiagOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::QuantizeOptions(value) => {
                        Self::QuantizeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::MatrixSetDiagOptions(value) => {
                        Self::MatrixSetDiagOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::HardSwishOptions(value) => {
                        Self::HardSwishOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::IfOptions(value) => {
                        Self::IfOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::WhileOptions(value) => {
                        Self::WhileOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DepthToSpaceOptions(value) => {
                        Self::DepthToSpaceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::NonMaxSuppressionV4Options(value) => {
                        Self::NonMaxSuppressionV4Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::NonMaxSuppressionV5Options(value) => {
                        Self::NonMaxSuppressionV5Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ScatterNdOptions(value) => {
                        Self::ScatterNdOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SelectV2Options(value) => {
                        Self::SelectV2Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DensifyOptions(value) => {
                        Self::DensifyOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SegmentSumOptions(value) => {
                        Self::SegmentSumOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BatchMatMulOptions(value) => {
                        Self::BatchMatMulOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::CumsumOptions(value) => {
                        Self::CumsumOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::CallOnceOptions(value) => {
                        Self::CallOnceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BroadcastToOptions(value) => {
                        Self::BroadcastToOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::Rfft2dOptions(value) => {
                        Self::Rfft2dOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::Conv3DOptions(value) => {
                        Self::Conv3DOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::HashtableOptions(value) => {
                        Self::HashtableOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::HashtableFindOptions(value) => {
                        Self::HashtableFindOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::HashtableImportOptions(value) => {
                        Self::HashtableImportOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::HashtableSizeOptions(value) => {
                        Self::HashtableSizeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::VarHandleOptions(value) => {
                        Self::VarHandleOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ReadVariableOptions(value) => {
                        Self::ReadVariableOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::AssignVariableOptions(value) => {
                        Self::AssignVariableOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::RandomOptions(value) => {
                        Self::RandomOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BucketizeOptions(value) => {
                        Self::BucketizeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::GeluOptions(value) => {
                        Self::GeluOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DynamicUpdateSliceOptions(value) => {
                        Self::DynamicUpdateSliceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UnsortedSegmentProdOptions(value) => {
                        Self::UnsortedSegmentProdOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UnsortedSegmentMaxOptions(value) => {
                        Self::UnsortedSegmentMaxOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UnsortedSegmentMinOptions(value) => {
                        Self::UnsortedSegmentMinOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UnsortedSegmentSumOptions(value) => {
                        Self::UnsortedSegmentSumOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ATan2Options(value) => {
                        Self::ATan2Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SignOptions(value) => {
                        Self::SignOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BitcastOptions(value) => {
                        Self::BitcastOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BitwiseXorOptions(value) => {
                        Self::BitwiseXorOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::RightShiftOptions(value) => {
                        Self::RightShiftOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }
                })
            }
        }

        impl<'a> ::planus::TableReadUnion<'a> for BuiltinOptionsRef<'a> {
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                tag: u8,
                field_offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                match tag {
                    1 => ::core::result::Result::Ok(Self::Conv2DOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    2 => ::core::result::Result::Ok(Self::DepthwiseConv2DOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    3 => ::core::result::Result::Ok(Self::ConcatEmbeddingsOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    4 => ::core::result::Result::Ok(Self::LshProjectionOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    5 => ::core::result::Result::Ok(Self::Pool2DOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    6 => ::core::result::Result::Ok(Self::SvdfOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    7 => ::core::result::Result::Ok(Self::RnnOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    8 => ::core::result::Result::Ok(Self::FullyConnectedOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    9 => ::core::result::Result::Ok(Self::SoftmaxOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    10 => ::core::result::Result::Ok(Self::ConcatenationOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    11 => ::core::result::Result::Ok(Self::AddOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    12 => ::core::result::Result::Ok(Self::L2NormOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    13 => ::core::result::Result::Ok(Self::LocalResponseNormalizationOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    14 => ::core::result::Result::Ok(Self::LstmOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    15 => ::core::result::Result::Ok(Self::ResizeBilinearOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    16 => ::core::result::Result::Ok(Self::CallOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    17 => ::core::result::Result::Ok(Self::ReshapeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    18 => ::core::result::Result::Ok(Self::SkipGramOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    19 => ::core::result::Result::Ok(Self::SpaceToDepthOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    20 => ::core::result::Result::Ok(Self::EmbeddingLookupSparseOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    21 => ::core::result::Result::Ok(Self::MulOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    22 => ::core::result::Result::Ok(Self::PadOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    23 => ::core::result::Result::Ok(Self::GatherOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    24 => ::core::result::Result::Ok(Self::BatchToSpaceNdOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    25 => ::core::result::Result::Ok(Self::SpaceToBatchNdOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    26 => ::core::result::Result::Ok(Self::TransposeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    27 => ::core::result::Result::Ok(Self::ReducerOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    28 => ::core::result::Result::Ok(Self::SubOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    29 => ::core::result::Result::Ok(Self::DivOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    30 => ::core::result::Result::Ok(Self::SqueezeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    31 => ::core::result::Result::Ok(Self::SequenceRnnOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    32 => ::core::result::Result::Ok(Self::StridedSliceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    33 => ::core::result::Result::Ok(Self::ExpOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    34 => ::core::result::Result::Ok(Self::TopKv2Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    35 => ::core::result::Result::Ok(Self::SplitOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    36 => ::core::result::Result::Ok(Self::LogSoftmaxOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    37 => ::core::result::Result::Ok(Self::CastOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    38 => ::core::result::Result::Ok(Self::DequantizeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    39 => ::core::result::Result::Ok(Self::MaximumMinimumOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    40 => ::core::result::Result::Ok(Self::ArgMaxOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    41 => ::core::result::Result::Ok(Self::LessOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    42 => ::core::result::Result::Ok(Self::NegOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    43 => ::core::result::Result::Ok(Self::PadV2Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    44 => ::core::result::Result::Ok(Self::GreaterOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    45 => ::core::result::Result::Ok(Self::GreaterEqualOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    46 => ::core::result::Result::Ok(Self::LessEqualOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    47 => ::core::result::Result::Ok(Self::SelectOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    48 => ::core::result::Result::Ok(Self::SliceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    49 => ::core::result::Result::Ok(Self::TransposeConvOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    50 => ::core::result::Result::Ok(Self::SparseToDenseOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    51 => ::core::result::Result::Ok(Self::TileOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    52 => ::core::result::Result::Ok(Self::ExpandDimsOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    53 => ::core::result::Result::Ok(Self::EqualOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    54 => ::core::result::Result::Ok(Self::NotEqualOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    55 => ::core::result::Result::Ok(Self::ShapeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    56 => ::core::result::Result::Ok(Self::PowOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    57 => ::core::result::Result::Ok(Self::ArgMinOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    58 => ::core::result::Result::Ok(Self::FakeQuantOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    59 => ::core::result::Result::Ok(Self::PackOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    60 => ::core::result::Result::Ok(Self::LogicalOrOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    61 => ::core::result::Result::Ok(Self::OneHotOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    62 => ::core::result::Result::Ok(Self::LogicalAndOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    63 => ::core::result::Result::Ok(Self::LogicalNotOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    64 => ::core::result::Result::Ok(Self::UnpackOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    65 => ::core::result::Result::Ok(Self::FloorDivOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    66 => ::core::result::Result::Ok(Self::SquareOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    67 => ::core::result::Result::Ok(Self::ZerosLikeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    68 => ::core::result::Result::Ok(Self::FillOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    69 => ::core::result::Result::Ok(Self::BidirectionalSequenceLstmOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    70 => ::core::result::Result::Ok(Self::BidirectionalSequenceRnnOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    71 => ::core::result::Result::Ok(Self::UnidirectionalSequenceLstmOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    72 => ::core::result::Result::Ok(Self::FloorModOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    73 => ::core::result::Result::Ok(Self::RangeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    74 => ::core::result::Result::Ok(Self::ResizeNearestNeighborOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    75 => ::core::result::Result::Ok(Self::LeakyReluOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    76 => ::core::result::Result::Ok(Self::SquaredDifferenceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    77 => ::core::result::Result::Ok(Self::MirrorPadOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    78 => ::core::result::Result::Ok(Self::AbsOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    79 => ::core::result::Result::Ok(Self::SplitVOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    80 => ::core::result::Result::Ok(Self::UniqueOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    81 => ::core::result::Result::Ok(Self::ReverseV2Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    82 => ::core::result::Result::Ok(Self::AddNOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    83 => ::core::result::Result::Ok(Self::GatherNdOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    84 => ::core::result::Result::Ok(Self::CosOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    85 => ::core::result::Result::Ok(Self::WhereOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    86 => ::core::result::Result::Ok(Self::RankOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    87 => ::core::result::Result::Ok(Self::ReverseSequenceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    88 => ::core::result::Result::Ok(Self::MatrixDiagOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    89 => ::core::result::Result::Ok(Self::QuantizeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    90 => ::core::result::Result::Ok(Self::MatrixSetDiagOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    91 => ::core::result::Result::Ok(Self::HardSwishOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    92 => ::core::result::Result::Ok(Self::IfOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    93 => ::core::result::Result::Ok(Self::WhileOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    94 => ::core::result::Result::Ok(Self::DepthToSpaceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    95 => ::core::result::Result::Ok(Self::NonMaxSuppressionV4Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    96 => ::core::result::Result::Ok(Self::NonMaxSuppressionV5Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    97 => ::core::result::Result::Ok(Self::ScatterNdOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    98 => ::core::result::Result::Ok(Self::SelectV2Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    99 => ::core::result::Result::Ok(Self::DensifyOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    100 => ::core::result::Result::Ok(Self::SegmentSumOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    101 => ::core::result::Result::Ok(Self::BatchMatMulOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    102 => ::core::result::Result::Ok(Self::CumsumOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    103 => ::core::result::Result::Ok(Self::CallOnceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    104 => ::core::result::Result::Ok(Self::BroadcastToOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    105 => ::core::result::Result::Ok(Self::Rfft2dOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    106 => ::core::result::Result::Ok(Self::Conv3DOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    107 => ::core::result::Result::Ok(Self::HashtableOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    108 => ::core::result::Result::Ok(Self::HashtableFindOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    109 => ::core::result::Result::Ok(Self::HashtableImportOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    110 => ::core::result::Result::Ok(Self::HashtableSizeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    111 => ::core::result::Result::Ok(Self::VarHandleOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    112 => ::core::result::Result::Ok(Self::ReadVariableOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    113 => ::core::result::Result::Ok(Self::AssignVariableOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    114 => ::core::result::Result::Ok(Self::RandomOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    115 => ::core::result::Result::Ok(Self::BucketizeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    116 => ::core::result::Result::Ok(Self::GeluOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    117 => ::core::result::Result::Ok(Self::DynamicUpdateSliceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    118 => ::core::result::Result::Ok(Self::UnsortedSegmentProdOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    119 => ::core::result::Result::Ok(Self::UnsortedSegmentMaxOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    120 => ::core::result::Result::Ok(Self::UnsortedSegmentMinOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    121 => ::core::result::Result::Ok(Self::UnsortedSegmentSumOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    122 => ::core::result::Result::Ok(Self::ATan2Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    123 => ::core::result::Result::Ok(Self::SignOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    124 => ::core::result::Result::Ok(Self::BitcastOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    125 => ::core::result::Result::Ok(Self::BitwiseXorOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    126 => ::core::result::Result::Ok(Self::RightShiftOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    _ => {
                        ::core::result::Result::Err(::planus::errors::ErrorKind::UnknownUnionTag {
                            tag,
                        })
                    }
                }
            }
        }

        impl<'a> ::planus::VectorReadUnion<'a> for BuiltinOptionsRef<'a> {
            const VECTOR_NAME: &'static str = "[BuiltinOptionsRef]";
        }

        /// The table `OperatorCode` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `OperatorCode` in the file `schema/tflite_subset.fbs:514`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct OperatorCode {
            ///  The builtin code when it fits a byte (older models; 127 means "see builtin_code").
            pub deprecated_builtin_code: i8,
            /// The field `custom_code` in the table `OperatorCode`
            pub custom_code: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `version` in the table `OperatorCode`
            pub version: i32,
            ///  A `BuiltinOperator` value.
            pub builtin_code: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for OperatorCode {
            fn default() -> Self {
                Self {
                    deprecated_builtin_code: 0,
                    custom_code: ::core::default::Default::default(),
                    version: 1,
                    builtin_code: 0,
                }
            }
        }

        impl OperatorCode {
            /// Creates a [OperatorCodeBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> OperatorCodeBuilder<()> {
                OperatorCodeBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_deprecated_builtin_code: impl ::planus::WriteAsDefault<i8, i8>,
                field_custom_code: impl ::planus::WriteAsOptional<
                    ::planus::Offset<::core::primitive::str>,
                >,
                field_version: impl ::planus::WriteAsDefault<i32, i32>,
                field_builtin_code: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_deprecated_builtin_code =
                    field_deprecated_builtin_code.prepare(builder, &0);
                let prepared_custom_code = field_custom_code.prepare(builder);
                let prepared_version = field_version.prepare(builder, &1);
                let prepared_builtin_code = field_builtin_code.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<12> =
                    ::core::default::Default::default();
                if prepared_custom_code.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(1);
                }
                if prepared_version.is_some() {
                    table_writer.write_entry::<i32>(2);
                }
                if prepared_builtin_code.is_some() {
                    table_writer.write_entry::<i32>(3);
                }
                if prepared_deprecated_builtin_code.is_some() {
                    table_writer.write_entry::<i8>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_custom_code) =
                            prepared_custom_code
                        {
                            object_writer.write::<_, _, 4>(&prepared_custom_code);
                        }
                        if let ::core::option::Option::Some(prepared_version) = prepared_version {
                            object_writer.write::<_, _, 4>(&prepared_version);
                        }
                        if let ::core::option::Option::Some(prepared_builtin_code) =
                            prepared_builtin_code
                        {
                            object_writer.write::<_, _, 4>(&prepared_builtin_code);
                        }
                        if let ::core::option::Option::Some(prepared_deprecated_builtin_code) =
                            prepared_deprecated_builtin_code
                        {
                            object_writer.write::<_, _, 1>(&prepared_deprecated_builtin_code);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<OperatorCode>> for OperatorCode {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<OperatorCode>> for OperatorCode {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<OperatorCode>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<OperatorCode> for OperatorCode {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode> {
                OperatorCode::create(
                    builder,
                    self.deprecated_builtin_code,
                    &self.custom_code,
                    self.version,
                    self.builtin_code,
                )
            }
        }

        /// Builder for serializing an instance of the [OperatorCode] type.
        ///
        /// Can be created using the [OperatorCode::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct OperatorCodeBuilder<State>(State);

        impl OperatorCodeBuilder<()> {
            /// Setter for the [`deprecated_builtin_code` field](OperatorCode#structfield.deprecated_builtin_code).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn deprecated_builtin_code<T0>(self, value: T0) -> OperatorCodeBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i8, i8>,
            {
                OperatorCodeBuilder((value,))
            }

            /// Sets the [`deprecated_builtin_code` field](OperatorCode#structfield.deprecated_builtin_code) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn deprecated_builtin_code_as_default(
                self,
            ) -> OperatorCodeBuilder<(::planus::DefaultValue,)> {
                self.deprecated_builtin_code(::planus::DefaultValue)
            }
        }

        impl<T0> OperatorCodeBuilder<(T0,)> {
            /// Setter for the [`custom_code` field](OperatorCode#structfield.custom_code).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_code<T1>(self, value: T1) -> OperatorCodeBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0,) = self.0;
                OperatorCodeBuilder((v0, value))
            }

            /// Sets the [`custom_code` field](OperatorCode#structfield.custom_code) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_code_as_null(self) -> OperatorCodeBuilder<(T0, ())> {
                self.custom_code(())
            }
        }

        impl<T0, T1> OperatorCodeBuilder<(T0, T1)> {
            /// Setter for the [`version` field](OperatorCode#structfield.version).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn version<T2>(self, value: T2) -> OperatorCodeBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1) = self.0;
                OperatorCodeBuilder((v0, v1, value))
            }

            /// Sets the [`version` field](OperatorCode#structfield.version) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn version_as_default(
                self,
            ) -> OperatorCodeBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.version(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> OperatorCodeBuilder<(T0, T1, T2)> {
            /// Setter for the [`builtin_code` field](OperatorCode#structfield.builtin_code).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn builtin_code<T3>(self, value: T3) -> OperatorCodeBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2) = self.0;
                OperatorCodeBuilder((v0, v1, v2, value))
            }

            /// Sets the [`builtin_code` field](OperatorCode#structfield.builtin_code) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn builtin_code_as_default(
                self,
            ) -> OperatorCodeBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.builtin_code(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> OperatorCodeBuilder<(T0, T1, T2, T3)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [OperatorCode].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode>
            where
                Self: ::planus::WriteAsOffset<OperatorCode>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAs<::planus::Offset<OperatorCode>>
            for OperatorCodeBuilder<(T0, T1, T2, T3)>
        {
            type Prepared = ::planus::Offset<OperatorCode>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOptional<::planus::Offset<OperatorCode>>
            for OperatorCodeBuilder<(T0, T1, T2, T3)>
        {
            type Prepared = ::planus::Offset<OperatorCode>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<OperatorCode>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOffset<OperatorCode> for OperatorCodeBuilder<(T0, T1, T2, T3)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode> {
                let (v0, v1, v2, v3) = &self.0;
                OperatorCode::create(builder, v0, v1, v2, v3)
            }
        }

        /// Reference to a deserialized [OperatorCode].
        #[derive(Copy, Clone)]
        pub struct OperatorCodeRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> OperatorCodeRef<'a> {
            /// Getter for the [`deprecated_builtin_code` field](OperatorCode#structfield.deprecated_builtin_code).
            #[inline]
            pub fn deprecated_builtin_code(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "OperatorCode", "deprecated_builtin_code")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`custom_code` field](OperatorCode#structfield.custom_code).
            #[inline]
            pub fn custom_code(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(1, "OperatorCode", "custom_code")
            }

            /// Getter for the [`version` field](OperatorCode#structfield.version).
            #[inline]
            pub fn version(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(2, "OperatorCode", "version")?.unwrap_or(1),
                )
            }

            /// Getter for the [`builtin_code` field](OperatorCode#structfield.builtin_code).
            #[inline]
            pub fn builtin_code(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "OperatorCode", "builtin_code")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for OperatorCodeRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("OperatorCodeRef");
                f.field("deprecated_builtin_code", &self.deprecated_builtin_code());
                if let ::core::option::Option::Some(field_custom_code) =
                    self.custom_code().transpose()
                {
                    f.field("custom_code", &field_custom_code);
                }
                f.field("version", &self.version());
                f.field("builtin_code", &self.builtin_code());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<OperatorCodeRef<'a>> for OperatorCode {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: OperatorCodeRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    deprecated_builtin_code: ::core::convert::TryInto::try_into(
                        value.deprecated_builtin_code()?,
                    )?,
                    custom_code: value.custom_code()?.map(::core::convert::Into::into),
                    version: ::core::convert::TryInto::try_into(value.version()?)?,
                    builtin_code: ::core::convert::TryInto::try_into(value.builtin_code()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for OperatorCodeRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for OperatorCodeRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[OperatorCodeRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<OperatorCode>> for OperatorCode {
            type Value = ::planus::Offset<OperatorCode>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<OperatorCode>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for OperatorCodeRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[OperatorCodeRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Operator` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Operator` in the file `schema/tflite_subset.fbs:523`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct Operator {
            /// The field `opcode_index` in the table `Operator`
            pub opcode_index: u32,
            /// The field `inputs` in the table `Operator`
            pub inputs: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `outputs` in the table `Operator`
            pub outputs: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `builtin_options` in the table `Operator`
            pub builtin_options: ::core::option::Option<self::BuiltinOptions>,
            /// The field `custom_options` in the table `Operator`
            pub custom_options: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
            /// The field `custom_options_format` in the table `Operator`
            pub custom_options_format: i8,
            /// The field `mutating_variable_inputs` in the table `Operator`
            pub mutating_variable_inputs: ::core::option::Option<::planus::alloc::vec::Vec<bool>>,
            /// The field `intermediates` in the table `Operator`
            pub intermediates: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `large_custom_options_offset` in the table `Operator`
            pub large_custom_options_offset: u64,
            /// The field `large_custom_options_size` in the table `Operator`
            pub large_custom_options_size: u64,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Operator {
            fn default() -> Self {
                Self {
                    opcode_index: 0,
                    inputs: ::core::default::Default::default(),
                    outputs: ::core::default::Default::default(),
                    builtin_options: ::core::default::Default::default(),
                    custom_options: ::core::default::Default::default(),
                    custom_options_format: 0,
                    mutating_variable_inputs: ::core::default::Default::default(),
                    intermediates: ::core::default::Default::default(),
                    large_custom_options_offset: 0,
                    large_custom_options_size: 0,
                }
            }
        }

        impl Operator {
            /// Creates a [OperatorBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> OperatorBuilder<()> {
                OperatorBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_opcode_index: impl ::planus::WriteAsDefault<u32, u32>,
                field_inputs: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_outputs: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_builtin_options: impl ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
                field_custom_options: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                field_custom_options_format: impl ::planus::WriteAsDefault<i8, i8>,
                field_mutating_variable_inputs: impl ::planus::WriteAsOptional<::planus::Offset<[bool]>>,
                field_intermediates: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_large_custom_options_offset: impl ::planus::WriteAsDefault<u64, u64>,
                field_large_custom_options_size: impl ::planus::WriteAsDefault<u64, u64>,
            ) -> ::planus::Offset<Self> {
                let prepared_opcode_index = field_opcode_index.prepare(builder, &0);
                let prepared_inputs = field_inputs.prepare(builder);
                let prepared_outputs = field_outputs.prepare(builder);
                let prepared_builtin_options = field_builtin_options.prepare(builder);
                let prepared_custom_options = field_custom_options.prepare(builder);
                let prepared_custom_options_format =
                    field_custom_options_format.prepare(builder, &0);
                let prepared_mutating_variable_inputs =
                    field_mutating_variable_inputs.prepare(builder);
                let prepared_intermediates = field_intermediates.prepare(builder);
                let prepared_large_custom_options_offset =
                    field_large_custom_options_offset.prepare(builder, &0);
                let prepared_large_custom_options_size =
                    field_large_custom_options_size.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<26> =
                    ::core::default::Default::default();
                if prepared_large_custom_options_offset.is_some() {
                    table_writer.write_entry::<u64>(9);
                }
                if prepared_large_custom_options_size.is_some() {
                    table_writer.write_entry::<u64>(10);
                }
                if prepared_opcode_index.is_some() {
                    table_writer.write_entry::<u32>(0);
                }
                if prepared_inputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(1);
                }
                if prepared_outputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(2);
                }
                if prepared_builtin_options.is_some() {
                    table_writer.write_entry::<::planus::Offset<self::BuiltinOptions>>(4);
                }
                if prepared_custom_options.is_some() {
                    table_writer.write_entry::<::planus::Offset<[u8]>>(5);
                }
                if prepared_mutating_variable_inputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[bool]>>(7);
                }
                if prepared_intermediates.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(8);
                }
                if prepared_builtin_options.is_some() {
                    table_writer.write_entry::<u8>(3);
                }
                if prepared_custom_options_format.is_some() {
                    table_writer.write_entry::<i8>(6);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_large_custom_options_offset) =
                            prepared_large_custom_options_offset
                        {
                            object_writer.write::<_, _, 8>(&prepared_large_custom_options_offset);
                        }
                        if let ::core::option::Option::Some(prepared_large_custom_options_size) =
                            prepared_large_custom_options_size
                        {
                            object_writer.write::<_, _, 8>(&prepared_large_custom_options_size);
                        }
                        if let ::core::option::Option::Some(prepared_opcode_index) =
                            prepared_opcode_index
                        {
                            object_writer.write::<_, _, 4>(&prepared_opcode_index);
                        }
                        if let ::core::option::Option::Some(prepared_inputs) = prepared_inputs {
                            object_writer.write::<_, _, 4>(&prepared_inputs);
                        }
                        if let ::core::option::Option::Some(prepared_outputs) = prepared_outputs {
                            object_writer.write::<_, _, 4>(&prepared_outputs);
                        }
                        if let ::core::option::Option::Some(prepared_builtin_options) =
                            prepared_builtin_options
                        {
                            object_writer.write::<_, _, 4>(&prepared_builtin_options.offset());
                        }
                        if let ::core::option::Option::Some(prepared_custom_options) =
                            prepared_custom_options
                        {
                            object_writer.write::<_, _, 4>(&prepared_custom_options);
                        }
                        if let ::core::option::Option::Some(prepared_mutating_variable_inputs) =
                            prepared_mutating_variable_inputs
                        {
                            object_writer.write::<_, _, 4>(&prepared_mutating_variable_inputs);
                        }
                        if let ::core::option::Option::Some(prepared_intermediates) =
                            prepared_intermediates
                        {
                            object_writer.write::<_, _, 4>(&prepared_intermediates);
                        }
                        if let ::core::option::Option::Some(prepared_builtin_options) =
                            prepared_builtin_options
                        {
                            object_writer.write::<_, _, 1>(&prepared_builtin_options.tag());
                        }
                        if let ::core::option::Option::Some(prepared_custom_options_format) =
                            prepared_custom_options_format
                        {
                            object_writer.write::<_, _, 1>(&prepared_custom_options_format);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Operator>> for Operator {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Operator>> for Operator {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Operator>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Operator> for Operator {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator> {
                Operator::create(
                    builder,
                    self.opcode_index,
                    &self.inputs,
                    &self.outputs,
                    &self.builtin_options,
                    &self.custom_options,
                    self.custom_options_format,
                    &self.mutating_variable_inputs,
                    &self.intermediates,
                    self.large_custom_options_offset,
                    self.large_custom_options_size,
                )
            }
        }

        /// Builder for serializing an instance of the [Operator] type.
        ///
        /// Can be created using the [Operator::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct OperatorBuilder<State>(State);

        impl OperatorBuilder<()> {
            /// Setter for the [`opcode_index` field](Operator#structfield.opcode_index).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn opcode_index<T0>(self, value: T0) -> OperatorBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<u32, u32>,
            {
                OperatorBuilder((value,))
            }

            /// Sets the [`opcode_index` field](Operator#structfield.opcode_index) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn opcode_index_as_default(self) -> OperatorBuilder<(::planus::DefaultValue,)> {
                self.opcode_index(::planus::DefaultValue)
            }
        }

        impl<T0> OperatorBuilder<(T0,)> {
            /// Setter for the [`inputs` field](Operator#structfield.inputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs<T1>(self, value: T1) -> OperatorBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0,) = self.0;
                OperatorBuilder((v0, value))
            }

            /// Sets the [`inputs` field](Operator#structfield.inputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs_as_null(self) -> OperatorBuilder<(T0, ())> {
                self.inputs(())
            }
        }

        impl<T0, T1> OperatorBuilder<(T0, T1)> {
            /// Setter for the [`outputs` field](Operator#structfield.outputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs<T2>(self, value: T2) -> OperatorBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0, v1) = self.0;
                OperatorBuilder((v0, v1, value))
            }

            /// Sets the [`outputs` field](Operator#structfield.outputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs_as_null(self) -> OperatorBuilder<(T0, T1, ())> {
                self.outputs(())
            }
        }

        impl<T0, T1, T2> OperatorBuilder<(T0, T1, T2)> {
            /// Setter for the [`builtin_options` field](Operator#structfield.builtin_options).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn builtin_options<T3>(self, value: T3) -> OperatorBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
            {
                let (v0, v1, v2) = self.0;
                OperatorBuilder((v0, v1, v2, value))
            }

            /// Sets the [`builtin_options` field](Operator#structfield.builtin_options) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn builtin_options_as_null(self) -> OperatorBuilder<(T0, T1, T2, ())> {
                self.builtin_options(())
            }
        }

        impl<T0, T1, T2, T3> OperatorBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`custom_options` field](Operator#structfield.custom_options).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_options<T4>(self, value: T4) -> OperatorBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            {
                let (v0, v1, v2, v3) = self.0;
                OperatorBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`custom_options` field](Operator#structfield.custom_options) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_options_as_null(self) -> OperatorBuilder<(T0, T1, T2, T3, ())> {
                self.custom_options(())
            }
        }

        impl<T0, T1, T2, T3, T4> OperatorBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`custom_options_format` field](Operator#structfield.custom_options_format).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_options_format<T5>(
                self,
                value: T5,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                OperatorBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`custom_options_format` field](Operator#structfield.custom_options_format) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_options_format_as_default(
                self,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)> {
                self.custom_options_format(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> OperatorBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Setter for the [`mutating_variable_inputs` field](Operator#structfield.mutating_variable_inputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn mutating_variable_inputs<T6>(
                self,
                value: T6,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6)>
            where
                T6: ::planus::WriteAsOptional<::planus::Offset<[bool]>>,
            {
                let (v0, v1, v2, v3, v4, v5) = self.0;
                OperatorBuilder((v0, v1, v2, v3, v4, v5, value))
            }

            /// Sets the [`mutating_variable_inputs` field](Operator#structfield.mutating_variable_inputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn mutating_variable_inputs_as_null(
                self,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5, ())> {
                self.mutating_variable_inputs(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6)> {
            /// Setter for the [`intermediates` field](Operator#structfield.intermediates).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn intermediates<T7>(
                self,
                value: T7,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
            where
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0, v1, v2, v3, v4, v5, v6) = self.0;
                OperatorBuilder((v0, v1, v2, v3, v4, v5, v6, value))
            }

            /// Sets the [`intermediates` field](Operator#structfield.intermediates) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn intermediates_as_null(
                self,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, ())> {
                self.intermediates(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6, T7> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)> {
            /// Setter for the [`large_custom_options_offset` field](Operator#structfield.large_custom_options_offset).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn large_custom_options_offset<T8>(
                self,
                value: T8,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)>
            where
                T8: ::planus::WriteAsDefault<u64, u64>,
            {
                let (v0, v1, v2, v3, v4, v5, v6, v7) = self.0;
                OperatorBuilder((v0, v1, v2, v3, v4, v5, v6, v7, value))
            }

            /// Sets the [`large_custom_options_offset` field](Operator#structfield.large_custom_options_offset) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn large_custom_options_offset_as_default(
                self,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, ::planus::DefaultValue)>
            {
                self.large_custom_options_offset(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6, T7, T8> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)> {
            /// Setter for the [`large_custom_options_size` field](Operator#structfield.large_custom_options_size).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn large_custom_options_size<T9>(
                self,
                value: T9,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9)>
            where
                T9: ::planus::WriteAsDefault<u64, u64>,
            {
                let (v0, v1, v2, v3, v4, v5, v6, v7, v8) = self.0;
                OperatorBuilder((v0, v1, v2, v3, v4, v5, v6, v7, v8, value))
            }

            /// Sets the [`large_custom_options_size` field](Operator#structfield.large_custom_options_size) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn large_custom_options_size_as_default(
                self,
            ) -> OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, ::planus::DefaultValue)>
            {
                self.large_custom_options_size(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9>
            OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9)>
        {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Operator].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator>
            where
                Self: ::planus::WriteAsOffset<Operator>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T5: ::planus::WriteAsDefault<i8, i8>,
                T6: ::planus::WriteAsOptional<::planus::Offset<[bool]>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T8: ::planus::WriteAsDefault<u64, u64>,
                T9: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAs<::planus::Offset<Operator>>
            for OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9)>
        {
            type Prepared = ::planus::Offset<Operator>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T5: ::planus::WriteAsDefault<i8, i8>,
                T6: ::planus::WriteAsOptional<::planus::Offset<[bool]>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T8: ::planus::WriteAsDefault<u64, u64>,
                T9: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAsOptional<::planus::Offset<Operator>>
            for OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9)>
        {
            type Prepared = ::planus::Offset<Operator>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Operator>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T5: ::planus::WriteAsDefault<i8, i8>,
                T6: ::planus::WriteAsOptional<::planus::Offset<[bool]>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T8: ::planus::WriteAsDefault<u64, u64>,
                T9: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAsOffset<Operator>
            for OperatorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator> {
                let (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9) = &self.0;
                Operator::create(builder, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9)
            }
        }

        /// Reference to a deserialized [Operator].
        #[derive(Copy, Clone)]
        pub struct OperatorRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> OperatorRef<'a> {
            /// Getter for the [`opcode_index` field](Operator#structfield.opcode_index).
            #[inline]
            pub fn opcode_index(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(
                    self.0.access(0, "Operator", "opcode_index")?.unwrap_or(0),
                )
            }

            /// Getter for the [`inputs` field](Operator#structfield.inputs).
            #[inline]
            pub fn inputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(1, "Operator", "inputs")
            }

            /// Getter for the [`outputs` field](Operator#structfield.outputs).
            #[inline]
            pub fn outputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(2, "Operator", "outputs")
            }

            /// Getter for the [`builtin_options` field](Operator#structfield.builtin_options).
            #[inline]
            pub fn builtin_options(
                &self,
            ) -> ::planus::Result<::core::option::Option<self::BuiltinOptionsRef<'a>>> {
                self.0.access_union(3, "Operator", "builtin_options")
            }

            /// Getter for the [`custom_options` field](Operator#structfield.custom_options).
            #[inline]
            pub fn custom_options(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                self.0.access(5, "Operator", "custom_options")
            }

            /// Getter for the [`custom_options_format` field](Operator#structfield.custom_options_format).
            #[inline]
            pub fn custom_options_format(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(6, "Operator", "custom_options_format")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`mutating_variable_inputs` field](Operator#structfield.mutating_variable_inputs).
            #[inline]
            pub fn mutating_variable_inputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, bool>>> {
                self.0.access(7, "Operator", "mutating_variable_inputs")
            }

            /// Getter for the [`intermediates` field](Operator#structfield.intermediates).
            #[inline]
            pub fn intermediates(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(8, "Operator", "intermediates")
            }

            /// Getter for the [`large_custom_options_offset` field](Operator#structfield.large_custom_options_offset).
            #[inline]
            pub fn large_custom_options_offset(&self) -> ::planus::Result<u64> {
                ::core::result::Result::Ok(
                    self.0
                        .access(9, "Operator", "large_custom_options_offset")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`large_custom_options_size` field](Operator#structfield.large_custom_options_size).
            #[inline]
            pub fn large_custom_options_size(&self) -> ::planus::Result<u64> {
                ::core::result::Result::Ok(
                    self.0
                        .access(10, "Operator", "large_custom_options_size")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for OperatorRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("OperatorRef");
                f.field("opcode_index", &self.opcode_index());
                if let ::core::option::Option::Some(field_inputs) = self.inputs().transpose() {
                    f.field("inputs", &field_inputs);
                }
                if let ::core::option::Option::Some(field_outputs) = self.outputs().transpose() {
                    f.field("outputs", &field_outputs);
                }
                if let ::core::option::Option::Some(field_builtin_options) =
                    self.builtin_options().transpose()
                {
                    f.field("builtin_options", &field_builtin_options);
                }
                if let ::core::option::Option::Some(field_custom_options) =
                    self.custom_options().transpose()
                {
                    f.field("custom_options", &field_custom_options);
                }
                f.field("custom_options_format", &self.custom_options_format());
                if let ::core::option::Option::Some(field_mutating_variable_inputs) =
                    self.mutating_variable_inputs().transpose()
                {
                    f.field("mutating_variable_inputs", &field_mutating_variable_inputs);
                }
                if let ::core::option::Option::Some(field_intermediates) =
                    self.intermediates().transpose()
                {
                    f.field("intermediates", &field_intermediates);
                }
                f.field(
                    "large_custom_options_offset",
                    &self.large_custom_options_offset(),
                );
                f.field(
                    "large_custom_options_size",
                    &self.large_custom_options_size(),
                );
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<OperatorRef<'a>> for Operator {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: OperatorRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    opcode_index: ::core::convert::TryInto::try_into(value.opcode_index()?)?,
                    inputs: if let ::core::option::Option::Some(inputs) = value.inputs()? {
                        ::core::option::Option::Some(inputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    outputs: if let ::core::option::Option::Some(outputs) = value.outputs()? {
                        ::core::option::Option::Some(outputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    builtin_options: if let ::core::option::Option::Some(builtin_options) =
                        value.builtin_options()?
                    {
                        ::core::option::Option::Some(::core::convert::TryInto::try_into(
                            builtin_options,
                        )?)
                    } else {
                        ::core::option::Option::None
                    },
                    custom_options: value.custom_options()?.map(|v| v.to_vec()),
                    custom_options_format: ::core::convert::TryInto::try_into(
                        value.custom_options_format()?,
                    )?,
                    mutating_variable_inputs: if let ::core::option::Option::Some(
                        mutating_variable_inputs,
                    ) = value.mutating_variable_inputs()?
                    {
                        ::core::option::Option::Some(mutating_variable_inputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    intermediates: if let ::core::option::Option::Some(intermediates) =
                        value.intermediates()?
                    {
                        ::core::option::Option::Some(intermediates.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    large_custom_options_offset: ::core::convert::TryInto::try_into(
                        value.large_custom_options_offset()?,
                    )?,
                    large_custom_options_size: ::core::convert::TryInto::try_into(
                        value.large_custom_options_size()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for OperatorRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for OperatorRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[OperatorRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Operator>> for Operator {
            type Value = ::planus::Offset<Operator>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Operator>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for OperatorRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[OperatorRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `SubGraph` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `SubGraph` in the file `schema/tflite_subset.fbs:536`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct SubGraph {
            /// The field `tensors` in the table `SubGraph`
            pub tensors: ::core::option::Option<::planus::alloc::vec::Vec<self::Tensor>>,
            /// The field `inputs` in the table `SubGraph`
            pub inputs: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `outputs` in the table `SubGraph`
            pub outputs: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `operators` in the table `SubGraph`
            pub operators: ::core::option::Option<::planus::alloc::vec::Vec<self::Operator>>,
            /// The field `name` in the table `SubGraph`
            pub name: ::core::option::Option<::planus::alloc::string::String>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SubGraph {
            fn default() -> Self {
                Self {
                    tensors: ::core::default::Default::default(),
                    inputs: ::core::default::Default::default(),
                    outputs: ::core::default::Default::default(),
                    operators: ::core::default::Default::default(),
                    name: ::core::default::Default::default(),
                }
            }
        }

        impl SubGraph {
            /// Creates a [SubGraphBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SubGraphBuilder<()> {
                SubGraphBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_tensors: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::Tensor>]>,
                >,
                field_inputs: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_outputs: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_operators: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::Operator>]>,
                >,
                field_name: impl ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            ) -> ::planus::Offset<Self> {
                let prepared_tensors = field_tensors.prepare(builder);
                let prepared_inputs = field_inputs.prepare(builder);
                let prepared_outputs = field_outputs.prepare(builder);
                let prepared_operators = field_operators.prepare(builder);
                let prepared_name = field_name.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<14> =
                    ::core::default::Default::default();
                if prepared_tensors.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::Tensor>]>>(0);
                }
                if prepared_inputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(1);
                }
                if prepared_outputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(2);
                }
                if prepared_operators.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::Operator>]>>(3);
                }
                if prepared_name.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(4);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_tensors) = prepared_tensors {
                            object_writer.write::<_, _, 4>(&prepared_tensors);
                        }
                        if let ::core::option::Option::Some(prepared_inputs) = prepared_inputs {
                            object_writer.write::<_, _, 4>(&prepared_inputs);
                        }
                        if let ::core::option::Option::Some(prepared_outputs) = prepared_outputs {
                            object_writer.write::<_, _, 4>(&prepared_outputs);
                        }
                        if let ::core::option::Option::Some(prepared_operators) = prepared_operators
                        {
                            object_writer.write::<_, _, 4>(&prepared_operators);
                        }
                        if let ::core::option::Option::Some(prepared_name) = prepared_name {
                            object_writer.write::<_, _, 4>(&prepared_name);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SubGraph>> for SubGraph {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SubGraph>> for SubGraph {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SubGraph>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SubGraph> for SubGraph {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph> {
                SubGraph::create(
                    builder,
                    &self.tensors,
                    &self.inputs,
                    &self.outputs,
                    &self.operators,
                    &self.name,
                )
            }
        }

        /// Builder for serializing an instance of the [SubGraph] type.
        ///
        /// Can be created using the [SubGraph::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SubGraphBuilder<State>(State);

        impl SubGraphBuilder<()> {
            /// Setter for the [`tensors` field](SubGraph#structfield.tensors).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn tensors<T0>(self, value: T0) -> SubGraphBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Tensor>]>>,
            {
                SubGraphBuilder((value,))
            }

            /// Sets the [`tensors` field](SubGraph#structfield.tensors) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn tensors_as_null(self) -> SubGraphBuilder<((),)> {
                self.tensors(())
            }
        }

        impl<T0> SubGraphBuilder<(T0,)> {
            /// Setter for the [`inputs` field](SubGraph#structfield.inputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs<T1>(self, value: T1) -> SubGraphBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0,) = self.0;
                SubGraphBuilder((v0, value))
            }

            /// Sets the [`inputs` field](SubGraph#structfield.inputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs_as_null(self) -> SubGraphBuilder<(T0, ())> {
                self.inputs(())
            }
        }

        impl<T0, T1> SubGraphBuilder<(T0, T1)> {
            /// Setter for the [`outputs` field](SubGraph#structfield.outputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs<T2>(self, value: T2) -> SubGraphBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0, v1) = self.0;
                SubGraphBuilder((v0, v1, value))
            }

            /// Sets the [`outputs` field](SubGraph#structfield.outputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs_as_null(self) -> SubGraphBuilder<(T0, T1, ())> {
                self.outputs(())
            }
        }

        impl<T0, T1, T2> SubGraphBuilder<(T0, T1, T2)> {
            /// Setter for the [`operators` field](SubGraph#structfield.operators).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn operators<T3>(self, value: T3) -> SubGraphBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Operator>]>>,
            {
                let (v0, v1, v2) = self.0;
                SubGraphBuilder((v0, v1, v2, value))
            }

            /// Sets the [`operators` field](SubGraph#structfield.operators) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn operators_as_null(self) -> SubGraphBuilder<(T0, T1, T2, ())> {
                self.operators(())
            }
        }

        impl<T0, T1, T2, T3> SubGraphBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`name` field](SubGraph#structfield.name).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name<T4>(self, value: T4) -> SubGraphBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0, v1, v2, v3) = self.0;
                SubGraphBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`name` field](SubGraph#structfield.name) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name_as_null(self) -> SubGraphBuilder<(T0, T1, T2, T3, ())> {
                self.name(())
            }
        }

        impl<T0, T1, T2, T3, T4> SubGraphBuilder<(T0, T1, T2, T3, T4)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SubGraph].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph>
            where
                Self: ::planus::WriteAsOffset<SubGraph>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Tensor>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Operator>]>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            > ::planus::WriteAs<::planus::Offset<SubGraph>>
            for SubGraphBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<SubGraph>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Tensor>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Operator>]>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            > ::planus::WriteAsOptional<::planus::Offset<SubGraph>>
            for SubGraphBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<SubGraph>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SubGraph>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Tensor>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Operator>]>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            > ::planus::WriteAsOffset<SubGraph> for SubGraphBuilder<(T0, T1, T2, T3, T4)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph> {
                let (v0, v1, v2, v3, v4) = &self.0;
                SubGraph::create(builder, v0, v1, v2, v3, v4)
            }
        }

        /// Reference to a deserialized [SubGraph].
        #[derive(Copy, Clone)]
        pub struct SubGraphRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SubGraphRef<'a> {
            /// Getter for the [`tensors` field](SubGraph#structfield.tensors).
            #[inline]
            pub fn tensors(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<::planus::Vector<'a, ::planus::Result<self::TensorRef<'a>>>>,
            > {
                self.0.access(0, "SubGraph", "tensors")
            }

            /// Getter for the [`inputs` field](SubGraph#structfield.inputs).
            #[inline]
            pub fn inputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(1, "SubGraph", "inputs")
            }

            /// Getter for the [`outputs` field](SubGraph#structfield.outputs).
            #[inline]
            pub fn outputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(2, "SubGraph", "outputs")
            }

            /// Getter for the [`operators` field](SubGraph#structfield.operators).
            #[inline]
            pub fn operators(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::OperatorRef<'a>>>,
                >,
            > {
                self.0.access(3, "SubGraph", "operators")
            }

            /// Getter for the [`name` field](SubGraph#structfield.name).
            #[inline]
            pub fn name(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(4, "SubGraph", "name")
            }
        }

        impl<'a> ::core::fmt::Debug for SubGraphRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SubGraphRef");
                if let ::core::option::Option::Some(field_tensors) = self.tensors().transpose() {
                    f.field("tensors", &field_tensors);
                }
                if let ::core::option::Option::Some(field_inputs) = self.inputs().transpose() {
                    f.field("inputs", &field_inputs);
                }
                if let ::core::option::Option::Some(field_outputs) = self.outputs().transpose() {
                    f.field("outputs", &field_outputs);
                }
                if let ::core::option::Option::Some(field_operators) = self.operators().transpose()
                {
                    f.field("operators", &field_operators);
                }
                if let ::core::option::Option::Some(field_name) = self.name().transpose() {
                    f.field("name", &field_name);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SubGraphRef<'a>> for SubGraph {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: SubGraphRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    tensors: if let ::core::option::Option::Some(tensors) = value.tensors()? {
                        ::core::option::Option::Some(tensors.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    inputs: if let ::core::option::Option::Some(inputs) = value.inputs()? {
                        ::core::option::Option::Some(inputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    outputs: if let ::core::option::Option::Some(outputs) = value.outputs()? {
                        ::core::option::Option::Some(outputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    operators: if let ::core::option::Option::Some(operators) = value.operators()? {
                        ::core::option::Option::Some(operators.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    name: value.name()?.map(::core::convert::Into::into),
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for SubGraphRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SubGraphRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[SubGraphRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SubGraph>> for SubGraph {
            type Value = ::planus::Offset<SubGraph>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SubGraph>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SubGraphRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SubGraphRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Buffer` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Buffer` in the file `schema/tflite_subset.fbs:544`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct Buffer {
            /// The field `data` in the table `Buffer`
            pub data: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
            ///  Models over 2 GiB keep buffer data after the flatbuffer: file offset and size.
            pub offset: u64,
            /// The field `size` in the table `Buffer`
            pub size: u64,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Buffer {
            fn default() -> Self {
                Self {
                    data: ::core::default::Default::default(),
                    offset: 0,
                    size: 0,
                }
            }
        }

        impl Buffer {
            /// Creates a [BufferBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> BufferBuilder<()> {
                BufferBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_data: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                field_offset: impl ::planus::WriteAsDefault<u64, u64>,
                field_size: impl ::planus::WriteAsDefault<u64, u64>,
            ) -> ::planus::Offset<Self> {
                let prepared_data = field_data.prepare(builder);
                let prepared_offset = field_offset.prepare(builder, &0);
                let prepared_size = field_size.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<10> =
                    ::core::default::Default::default();
                if prepared_offset.is_some() {
                    table_writer.write_entry::<u64>(1);
                }
                if prepared_size.is_some() {
                    table_writer.write_entry::<u64>(2);
                }
                if prepared_data.is_some() {
                    table_writer.write_entry::<::planus::Offset<[u8]>>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_offset) = prepared_offset {
                            object_writer.write::<_, _, 8>(&prepared_offset);
                        }
                        if let ::core::option::Option::Some(prepared_size) = prepared_size {
                            object_writer.write::<_, _, 8>(&prepared_size);
                        }
                        if let ::core::option::Option::Some(prepared_data) = prepared_data {
                            object_writer.write::<_, _, 4>(&prepared_data);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Buffer>> for Buffer {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Buffer>> for Buffer {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Buffer>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Buffer> for Buffer {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer> {
                Buffer::create(builder, &self.data, self.offset, self.size)
            }
        }

        /// Builder for serializing an instance of the [Buffer] type.
        ///
        /// Can be created using the [Buffer::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct BufferBuilder<State>(State);

        impl BufferBuilder<()> {
            /// Setter for the [`data` field](Buffer#structfield.data).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn data<T0>(self, value: T0) -> BufferBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            {
                BufferBuilder((value,))
            }

            /// Sets the [`data` field](Buffer#structfield.data) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn data_as_null(self) -> BufferBuilder<((),)> {
                self.data(())
            }
        }

        impl<T0> BufferBuilder<(T0,)> {
            /// Setter for the [`offset` field](Buffer#structfield.offset).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn offset<T1>(self, value: T1) -> BufferBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<u64, u64>,
            {
                let (v0,) = self.0;
                BufferBuilder((v0, value))
            }

            /// Sets the [`offset` field](Buffer#structfield.offset) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn offset_as_default(self) -> BufferBuilder<(T0, ::planus::DefaultValue)> {
                self.offset(::planus::DefaultValue)
            }
        }

        impl<T0, T1> BufferBuilder<(T0, T1)> {
            /// Setter for the [`size` field](Buffer#structfield.size).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn size<T2>(self, value: T2) -> BufferBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<u64, u64>,
            {
                let (v0, v1) = self.0;
                BufferBuilder((v0, v1, value))
            }

            /// Sets the [`size` field](Buffer#structfield.size) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn size_as_default(self) -> BufferBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.size(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> BufferBuilder<(T0, T1, T2)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Buffer].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer>
            where
                Self: ::planus::WriteAsOffset<Buffer>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T1: ::planus::WriteAsDefault<u64, u64>,
                T2: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAs<::planus::Offset<Buffer>> for BufferBuilder<(T0, T1, T2)>
        {
            type Prepared = ::planus::Offset<Buffer>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T1: ::planus::WriteAsDefault<u64, u64>,
                T2: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAsOptional<::planus::Offset<Buffer>> for BufferBuilder<(T0, T1, T2)>
        {
            type Prepared = ::planus::Offset<Buffer>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Buffer>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T1: ::planus::WriteAsDefault<u64, u64>,
                T2: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAsOffset<Buffer> for BufferBuilder<(T0, T1, T2)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer> {
                let (v0, v1, v2) = &self.0;
                Buffer::create(builder, v0, v1, v2)
            }
        }

        /// Reference to a deserialized [Buffer].
        #[derive(Copy, Clone)]
        pub struct BufferRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> BufferRef<'a> {
            /// Getter for the [`data` field](Buffer#structfield.data).
            #[inline]
            pub fn data(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                self.0.access(0, "Buffer", "data")
            }

            /// Getter for the [`offset` field](Buffer#structfield.offset).
            #[inline]
            pub fn offset(&self) -> ::planus::Result<u64> {
                ::core::result::Result::Ok(self.0.access(1, "Buffer", "offset")?.unwrap_or(0))
            }

            /// Getter for the [`size` field](Buffer#structfield.size).
            #[inline]
            pub fn size(&self) -> ::planus::Result<u64> {
                ::core::result::Result::Ok(self.0.access(2, "Buffer", "size")?.unwrap_or(0))
            }
        }

        impl<'a> ::core::fmt::Debug for BufferRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("BufferRef");
                if let ::core::option::Option::Some(field_data) = self.data().transpose() {
                    f.field("data", &field_data);
                }
                f.field("offset", &self.offset());
                f.field("size", &self.size());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<BufferRef<'a>> for Buffer {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: BufferRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    data: value.data()?.map(|v| v.to_vec()),
                    offset: ::core::convert::TryInto::try_into(value.offset()?)?,
                    size: ::core::convert::TryInto::try_into(value.size()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for BufferRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for BufferRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[BufferRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Buffer>> for Buffer {
            type Value = ::planus::Offset<Buffer>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Buffer>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for BufferRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[BufferRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Metadata` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Metadata` in the file `schema/tflite_subset.fbs:551`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct Metadata {
            /// The field `name` in the table `Metadata`
            pub name: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `buffer` in the table `Metadata`
            pub buffer: u32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Metadata {
            fn default() -> Self {
                Self {
                    name: ::core::default::Default::default(),
                    buffer: 0,
                }
            }
        }

        impl Metadata {
            /// Creates a [MetadataBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> MetadataBuilder<()> {
                MetadataBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_name: impl ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                field_buffer: impl ::planus::WriteAsDefault<u32, u32>,
            ) -> ::planus::Offset<Self> {
                let prepared_name = field_name.prepare(builder);
                let prepared_buffer = field_buffer.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<8> =
                    ::core::default::Default::default();
                if prepared_name.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(0);
                }
                if prepared_buffer.is_some() {
                    table_writer.write_entry::<u32>(1);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_name) = prepared_name {
                            object_writer.write::<_, _, 4>(&prepared_name);
                        }
                        if let ::core::option::Option::Some(prepared_buffer) = prepared_buffer {
                            object_writer.write::<_, _, 4>(&prepared_buffer);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Metadata>> for Metadata {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Metadata> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Metadata>> for Metadata {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Metadata>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Metadata> for Metadata {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Metadata> {
                Metadata::create(builder, &self.name, self.buffer)
            }
        }

        /// Builder for serializing an instance of the [Metadata] type.
        ///
        /// Can be created using the [Metadata::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct MetadataBuilder<State>(State);

        impl MetadataBuilder<()> {
            /// Setter for the [`name` field](Metadata#structfield.name).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name<T0>(self, value: T0) -> MetadataBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                MetadataBuilder((value,))
            }

            /// Sets the [`name` field](Metadata#structfield.name) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name_as_null(self) -> MetadataBuilder<((),)> {
                self.name(())
            }
        }

        impl<T0> MetadataBuilder<(T0,)> {
            /// Setter for the [`buffer` field](Metadata#structfield.buffer).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffer<T1>(self, value: T1) -> MetadataBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<u32, u32>,
            {
                let (v0,) = self.0;
                MetadataBuilder((v0, value))
            }

            /// Sets the [`buffer` field](Metadata#structfield.buffer) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffer_as_default(self) -> MetadataBuilder<(T0, ::planus::DefaultValue)> {
                self.buffer(::planus::DefaultValue)
            }
        }

        impl<T0, T1> MetadataBuilder<(T0, T1)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Metadata].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Metadata>
            where
                Self: ::planus::WriteAsOffset<Metadata>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T1: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAs<::planus::Offset<Metadata>> for MetadataBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<Metadata>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Metadata> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T1: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAsOptional<::planus::Offset<Metadata>> for MetadataBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<Metadata>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Metadata>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T1: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAsOffset<Metadata> for MetadataBuilder<(T0, T1)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Metadata> {
                let (v0, v1) = &self.0;
                Metadata::create(builder, v0, v1)
            }
        }

        /// Reference to a deserialized [Metadata].
        #[derive(Copy, Clone)]
        pub struct MetadataRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> MetadataRef<'a> {
            /// Getter for the [`name` field](Metadata#structfield.name).
            #[inline]
            pub fn name(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(0, "Metadata", "name")
            }

            /// Getter for the [`buffer` field](Metadata#structfield.buffer).
            #[inline]
            pub fn buffer(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(self.0.access(1, "Metadata", "buffer")?.unwrap_or(0))
            }
        }

        impl<'a> ::core::fmt::Debug for MetadataRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("MetadataRef");
                if let ::core::option::Option::Some(field_name) = self.name().transpose() {
                    f.field("name", &field_name);
                }
                f.field("buffer", &self.buffer());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<MetadataRef<'a>> for Metadata {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: MetadataRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    name: value.name()?.map(::core::convert::Into::into),
                    buffer: ::core::convert::TryInto::try_into(value.buffer()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for MetadataRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for MetadataRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[MetadataRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Metadata>> for Metadata {
            type Value = ::planus::Offset<Metadata>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Metadata>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for MetadataRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[MetadataRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `TensorMap` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `TensorMap` in the file `schema/tflite_subset.fbs:556`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct TensorMap {
            /// The field `name` in the table `TensorMap`
            pub name: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `tensor_index` in the table `TensorMap`
            pub tensor_index: u32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for TensorMap {
            fn default() -> Self {
                Self {
                    name: ::core::default::Default::default(),
                    tensor_index: 0,
                }
            }
        }

        impl TensorMap {
            /// Creates a [TensorMapBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> TensorMapBuilder<()> {
                TensorMapBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_name: impl ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                field_tensor_index: impl ::planus::WriteAsDefault<u32, u32>,
            ) -> ::planus::Offset<Self> {
                let prepared_name = field_name.prepare(builder);
                let prepared_tensor_index = field_tensor_index.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<8> =
                    ::core::default::Default::default();
                if prepared_name.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(0);
                }
                if prepared_tensor_index.is_some() {
                    table_writer.write_entry::<u32>(1);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_name) = prepared_name {
                            object_writer.write::<_, _, 4>(&prepared_name);
                        }
                        if let ::core::option::Option::Some(prepared_tensor_index) =
                            prepared_tensor_index
                        {
                            object_writer.write::<_, _, 4>(&prepared_tensor_index);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<TensorMap>> for TensorMap {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<TensorMap> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<TensorMap>> for TensorMap {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<TensorMap>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<TensorMap> for TensorMap {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<TensorMap> {
                TensorMap::create(builder, &self.name, self.tensor_index)
            }
        }

        /// Builder for serializing an instance of the [TensorMap] type.
        ///
        /// Can be created using the [TensorMap::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct TensorMapBuilder<State>(State);

        impl TensorMapBuilder<()> {
            /// Setter for the [`name` field](TensorMap#structfield.name).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name<T0>(self, value: T0) -> TensorMapBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                TensorMapBuilder((value,))
            }

            /// Sets the [`name` field](TensorMap#structfield.name) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name_as_null(self) -> TensorMapBuilder<((),)> {
                self.name(())
            }
        }

        impl<T0> TensorMapBuilder<(T0,)> {
            /// Setter for the [`tensor_index` field](TensorMap#structfield.tensor_index).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn tensor_index<T1>(self, value: T1) -> TensorMapBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<u32, u32>,
            {
                let (v0,) = self.0;
                TensorMapBuilder((v0, value))
            }

            /// Sets the [`tensor_index` field](TensorMap#structfield.tensor_index) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn tensor_index_as_default(self) -> TensorMapBuilder<(T0, ::planus::DefaultValue)> {
                self.tensor_index(::planus::DefaultValue)
            }
        }

        impl<T0, T1> TensorMapBuilder<(T0, T1)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [TensorMap].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<TensorMap>
            where
                Self: ::planus::WriteAsOffset<TensorMap>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T1: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAs<::planus::Offset<TensorMap>> for TensorMapBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<TensorMap>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<TensorMap> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T1: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAsOptional<::planus::Offset<TensorMap>>
            for TensorMapBuilder<(T0, T1)>
        {
            type Prepared = ::planus::Offset<TensorMap>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<TensorMap>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T1: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAsOffset<TensorMap> for TensorMapBuilder<(T0, T1)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<TensorMap> {
                let (v0, v1) = &self.0;
                TensorMap::create(builder, v0, v1)
            }
        }

        /// Reference to a deserialized [TensorMap].
        #[derive(Copy, Clone)]
        pub struct TensorMapRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> TensorMapRef<'a> {
            /// Getter for the [`name` field](TensorMap#structfield.name).
            #[inline]
            pub fn name(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(0, "TensorMap", "name")
            }

            /// Getter for the [`tensor_index` field](TensorMap#structfield.tensor_index).
            #[inline]
            pub fn tensor_index(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(
                    self.0.access(1, "TensorMap", "tensor_index")?.unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for TensorMapRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("TensorMapRef");
                if let ::core::option::Option::Some(field_name) = self.name().transpose() {
                    f.field("name", &field_name);
                }
                f.field("tensor_index", &self.tensor_index());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<TensorMapRef<'a>> for TensorMap {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: TensorMapRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    name: value.name()?.map(::core::convert::Into::into),
                    tensor_index: ::core::convert::TryInto::try_into(value.tensor_index()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for TensorMapRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for TensorMapRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[TensorMapRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<TensorMap>> for TensorMap {
            type Value = ::planus::Offset<TensorMap>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<TensorMap>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for TensorMapRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[TensorMapRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `SignatureDef` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `SignatureDef` in the file `schema/tflite_subset.fbs:561`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct SignatureDef {
            /// The field `inputs` in the table `SignatureDef`
            pub inputs: ::core::option::Option<::planus::alloc::vec::Vec<self::TensorMap>>,
            /// The field `outputs` in the table `SignatureDef`
            pub outputs: ::core::option::Option<::planus::alloc::vec::Vec<self::TensorMap>>,
            /// The field `signature_key` in the table `SignatureDef`
            pub signature_key: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `subgraph_index` in the table `SignatureDef`
            pub subgraph_index: u32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SignatureDef {
            fn default() -> Self {
                Self {
                    inputs: ::core::default::Default::default(),
                    outputs: ::core::default::Default::default(),
                    signature_key: ::core::default::Default::default(),
                    subgraph_index: 0,
                }
            }
        }

        impl SignatureDef {
            /// Creates a [SignatureDefBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SignatureDefBuilder<()> {
                SignatureDefBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_inputs: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::TensorMap>]>,
                >,
                field_outputs: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::TensorMap>]>,
                >,
                field_signature_key: impl ::planus::WriteAsOptional<
                    ::planus::Offset<::core::primitive::str>,
                >,
                field_subgraph_index: impl ::planus::WriteAsDefault<u32, u32>,
            ) -> ::planus::Offset<Self> {
                let prepared_inputs = field_inputs.prepare(builder);
                let prepared_outputs = field_outputs.prepare(builder);
                let prepared_signature_key = field_signature_key.prepare(builder);
                let prepared_subgraph_index = field_subgraph_index.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<14> =
                    ::core::default::Default::default();
                if prepared_inputs.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::TensorMap>]>>(0);
                }
                if prepared_outputs.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::TensorMap>]>>(1);
                }
                if prepared_signature_key.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(2);
                }
                if prepared_subgraph_index.is_some() {
                    table_writer.write_entry::<u32>(4);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_inputs) = prepared_inputs {
                            object_writer.write::<_, _, 4>(&prepared_inputs);
                        }
                        if let ::core::option::Option::Some(prepared_outputs) = prepared_outputs {
                            object_writer.write::<_, _, 4>(&prepared_outputs);
                        }
                        if let ::core::option::Option::Some(prepared_signature_key) =
                            prepared_signature_key
                        {
                            object_writer.write::<_, _, 4>(&prepared_signature_key);
                        }
                        if let ::core::option::Option::Some(prepared_subgraph_index) =
                            prepared_subgraph_index
                        {
                            object_writer.write::<_, _, 4>(&prepared_subgraph_index);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SignatureDef>> for SignatureDef {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SignatureDef> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SignatureDef>> for SignatureDef {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SignatureDef>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SignatureDef> for SignatureDef {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SignatureDef> {
                SignatureDef::create(
                    builder,
                    &self.inputs,
                    &self.outputs,
                    &self.signature_key,
                    self.subgraph_index,
                )
            }
        }

        /// Builder for serializing an instance of the [SignatureDef] type.
        ///
        /// Can be created using the [SignatureDef::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SignatureDefBuilder<State>(State);

        impl SignatureDefBuilder<()> {
            /// Setter for the [`inputs` field](SignatureDef#structfield.inputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs<T0>(self, value: T0) -> SignatureDefBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::TensorMap>]>,
                >,
            {
                SignatureDefBuilder((value,))
            }

            /// Sets the [`inputs` field](SignatureDef#structfield.inputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs_as_null(self) -> SignatureDefBuilder<((),)> {
                self.inputs(())
            }
        }

        impl<T0> SignatureDefBuilder<(T0,)> {
            /// Setter for the [`outputs` field](SignatureDef#structfield.outputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs<T1>(self, value: T1) -> SignatureDefBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::TensorMap>]>,
                >,
            {
                let (v0,) = self.0;
                SignatureDefBuilder((v0, value))
            }

            /// Sets the [`outputs` field](SignatureDef#structfield.outputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs_as_null(self) -> SignatureDefBuilder<(T0, ())> {
                self.outputs(())
            }
        }

        impl<T0, T1> SignatureDefBuilder<(T0, T1)> {
            /// Setter for the [`signature_key` field](SignatureDef#structfield.signature_key).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn signature_key<T2>(self, value: T2) -> SignatureDefBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0, v1) = self.0;
                SignatureDefBuilder((v0, v1, value))
            }

            /// Sets the [`signature_key` field](SignatureDef#structfield.signature_key) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn signature_key_as_null(self) -> SignatureDefBuilder<(T0, T1, ())> {
                self.signature_key(())
            }
        }

        impl<T0, T1, T2> SignatureDefBuilder<(T0, T1, T2)> {
            /// Setter for the [`subgraph_index` field](SignatureDef#structfield.subgraph_index).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn subgraph_index<T3>(self, value: T3) -> SignatureDefBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<u32, u32>,
            {
                let (v0, v1, v2) = self.0;
                SignatureDefBuilder((v0, v1, v2, value))
            }

            /// Sets the [`subgraph_index` field](SignatureDef#structfield.subgraph_index) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn subgraph_index_as_default(
                self,
            ) -> SignatureDefBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.subgraph_index(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> SignatureDefBuilder<(T0, T1, T2, T3)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SignatureDef].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<SignatureDef>
            where
                Self: ::planus::WriteAsOffset<SignatureDef>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::TensorMap>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::TensorMap>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T3: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAs<::planus::Offset<SignatureDef>>
            for SignatureDefBuilder<(T0, T1, T2, T3)>
        {
            type Prepared = ::planus::Offset<SignatureDef>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SignatureDef> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::TensorMap>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::TensorMap>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T3: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAsOptional<::planus::Offset<SignatureDef>>
            for SignatureDefBuilder<(T0, T1, T2, T3)>
        {
            type Prepared = ::planus::Offset<SignatureDef>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SignatureDef>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::TensorMap>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::TensorMap>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T3: ::planus::WriteAsDefault<u32, u32>,
            > ::planus::WriteAsOffset<SignatureDef> for SignatureDefBuilder<(T0, T1, T2, T3)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SignatureDef> {
                let (v0, v1, v2, v3) = &self.0;
                SignatureDef::create(builder, v0, v1, v2, v3)
            }
        }

        /// Reference to a deserialized [SignatureDef].
        #[derive(Copy, Clone)]
        pub struct SignatureDefRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SignatureDefRef<'a> {
            /// Getter for the [`inputs` field](SignatureDef#structfield.inputs).
            #[inline]
            pub fn inputs(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::TensorMapRef<'a>>>,
                >,
            > {
                self.0.access(0, "SignatureDef", "inputs")
            }

            /// Getter for the [`outputs` field](SignatureDef#structfield.outputs).
            #[inline]
            pub fn outputs(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::TensorMapRef<'a>>>,
                >,
            > {
                self.0.access(1, "SignatureDef", "outputs")
            }

            /// Getter for the [`signature_key` field](SignatureDef#structfield.signature_key).
            #[inline]
            pub fn signature_key(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(2, "SignatureDef", "signature_key")
            }

            /// Getter for the [`subgraph_index` field](SignatureDef#structfield.subgraph_index).
            #[inline]
            pub fn subgraph_index(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(4, "SignatureDef", "subgraph_index")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for SignatureDefRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SignatureDefRef");
                if let ::core::option::Option::Some(field_inputs) = self.inputs().transpose() {
                    f.field("inputs", &field_inputs);
                }
                if let ::core::option::Option::Some(field_outputs) = self.outputs().transpose() {
                    f.field("outputs", &field_outputs);
                }
                if let ::core::option::Option::Some(field_signature_key) =
                    self.signature_key().transpose()
                {
                    f.field("signature_key", &field_signature_key);
                }
                f.field("subgraph_index", &self.subgraph_index());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SignatureDefRef<'a>> for SignatureDef {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: SignatureDefRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    inputs: if let ::core::option::Option::Some(inputs) = value.inputs()? {
                        ::core::option::Option::Some(inputs.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    outputs: if let ::core::option::Option::Some(outputs) = value.outputs()? {
                        ::core::option::Option::Some(outputs.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    signature_key: value.signature_key()?.map(::core::convert::Into::into),
                    subgraph_index: ::core::convert::TryInto::try_into(value.subgraph_index()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for SignatureDefRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SignatureDefRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[SignatureDefRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SignatureDef>> for SignatureDef {
            type Value = ::planus::Offset<SignatureDef>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SignatureDef>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SignatureDefRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SignatureDefRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Model` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Model` in the file `schema/tflite_subset.fbs:569`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct Model {
            /// The field `version` in the table `Model`
            pub version: u32,
            /// The field `operator_codes` in the table `Model`
            pub operator_codes:
                ::core::option::Option<::planus::alloc::vec::Vec<self::OperatorCode>>,
            /// The field `subgraphs` in the table `Model`
            pub subgraphs: ::core::option::Option<::planus::alloc::vec::Vec<self::SubGraph>>,
            /// The field `description` in the table `Model`
            pub description: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `buffers` in the table `Model`
            pub buffers: ::core::option::Option<::planus::alloc::vec::Vec<self::Buffer>>,
            /// The field `metadata_buffer` in the table `Model`
            pub metadata_buffer: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `metadata` in the table `Model`
            pub metadata: ::core::option::Option<::planus::alloc::vec::Vec<self::Metadata>>,
            /// The field `signature_defs` in the table `Model`
            pub signature_defs:
                ::core::option::Option<::planus::alloc::vec::Vec<self::SignatureDef>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Model {
            fn default() -> Self {
                Self {
                    version: 0,
                    operator_codes: ::core::default::Default::default(),
                    subgraphs: ::core::default::Default::default(),
                    description: ::core::default::Default::default(),
                    buffers: ::core::default::Default::default(),
                    metadata_buffer: ::core::default::Default::default(),
                    metadata: ::core::default::Default::default(),
                    signature_defs: ::core::default::Default::default(),
                }
            }
        }

        impl Model {
            /// Creates a [ModelBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> ModelBuilder<()> {
                ModelBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_version: impl ::planus::WriteAsDefault<u32, u32>,
                field_operator_codes: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::OperatorCode>]>,
                >,
                field_subgraphs: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::SubGraph>]>,
                >,
                field_description: impl ::planus::WriteAsOptional<
                    ::planus::Offset<::core::primitive::str>,
                >,
                field_buffers: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::Buffer>]>,
                >,
                field_metadata_buffer: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_metadata: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::Metadata>]>,
                >,
                field_signature_defs: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::SignatureDef>]>,
                >,
            ) -> ::planus::Offset<Self> {
                let prepared_version = field_version.prepare(builder, &0);
                let prepared_operator_codes = field_operator_codes.prepare(builder);
                let prepared_subgraphs = field_subgraphs.prepare(builder);
                let prepared_description = field_description.prepare(builder);
                let prepared_buffers = field_buffers.prepare(builder);
                let prepared_metadata_buffer = field_metadata_buffer.prepare(builder);
                let prepared_metadata = field_metadata.prepare(builder);
                let prepared_signature_defs = field_signature_defs.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<20> =
                    ::core::default::Default::default();
                if prepared_version.is_some() {
                    table_writer.write_entry::<u32>(0);
                }
                if prepared_operator_codes.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::OperatorCode>]>>(1);
                }
                if prepared_subgraphs.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::SubGraph>]>>(2);
                }
                if prepared_description.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(3);
                }
                if prepared_buffers.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::Buffer>]>>(4);
                }
                if prepared_metadata_buffer.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(5);
                }
                if prepared_metadata.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::Metadata>]>>(6);
                }
                if prepared_signature_defs.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::SignatureDef>]>>(7);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_version) = prepared_version {
                            object_writer.write::<_, _, 4>(&prepared_version);
                        }
                        if let ::core::option::Option::Some(prepared_operator_codes) =
                            prepared_operator_codes
                        {
                            object_writer.write::<_, _, 4>(&prepared_operator_codes);
                        }
                        if let ::core::option::Option::Some(prepared_subgraphs) = prepared_subgraphs
                        {
                            object_writer.write::<_, _, 4>(&prepared_subgraphs);
                        }
                        if let ::core::option::Option::Some(prepared_description) =
                            prepared_description
                        {
                            object_writer.write::<_, _, 4>(&prepared_description);
                        }
                        if let ::core::option::Option::Some(prepared_buffers) = prepared_buffers {
                            object_writer.write::<_, _, 4>(&prepared_buffers);
                        }
                        if let ::core::option::Option::Some(prepared_metadata_buffer) =
                            prepared_metadata_buffer
                        {
                            object_writer.write::<_, _, 4>(&prepared_metadata_buffer);
                        }
                        if let ::core::option::Option::Some(prepared_metadata) = prepared_metadata {
                            object_writer.write::<_, _, 4>(&prepared_metadata);
                        }
                        if let ::core::option::Option::Some(prepared_signature_defs) =
                            prepared_signature_defs
                        {
                            object_writer.write::<_, _, 4>(&prepared_signature_defs);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Model>> for Model {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Model>> for Model {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Model>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Model> for Model {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model> {
                Model::create(
                    builder,
                    self.version,
                    &self.operator_codes,
                    &self.subgraphs,
                    &self.description,
                    &self.buffers,
                    &self.metadata_buffer,
                    &self.metadata,
                    &self.signature_defs,
                )
            }
        }

        /// Builder for serializing an instance of the [Model] type.
        ///
        /// Can be created using the [Model::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct ModelBuilder<State>(State);

        impl ModelBuilder<()> {
            /// Setter for the [`version` field](Model#structfield.version).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn version<T0>(self, value: T0) -> ModelBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<u32, u32>,
            {
                ModelBuilder((value,))
            }

            /// Sets the [`version` field](Model#structfield.version) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn version_as_default(self) -> ModelBuilder<(::planus::DefaultValue,)> {
                self.version(::planus::DefaultValue)
            }
        }

        impl<T0> ModelBuilder<(T0,)> {
            /// Setter for the [`operator_codes` field](Model#structfield.operator_codes).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn operator_codes<T1>(self, value: T1) -> ModelBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::OperatorCode>]>,
                >,
            {
                let (v0,) = self.0;
                ModelBuilder((v0, value))
            }

            /// Sets the [`operator_codes` field](Model#structfield.operator_codes) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn operator_codes_as_null(self) -> ModelBuilder<(T0, ())> {
                self.operator_codes(())
            }
        }

        impl<T0, T1> ModelBuilder<(T0, T1)> {
            /// Setter for the [`subgraphs` field](Model#structfield.subgraphs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn subgraphs<T2>(self, value: T2) -> ModelBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SubGraph>]>>,
            {
                let (v0, v1) = self.0;
                ModelBuilder((v0, v1, value))
            }

            /// Sets the [`subgraphs` field](Model#structfield.subgraphs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn subgraphs_as_null(self) -> ModelBuilder<(T0, T1, ())> {
                self.subgraphs(())
            }
        }

        impl<T0, T1, T2> ModelBuilder<(T0, T1, T2)> {
            /// Setter for the [`description` field](Model#structfield.description).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn description<T3>(self, value: T3) -> ModelBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0, v1, v2) = self.0;
                ModelBuilder((v0, v1, v2, value))
            }

            /// Sets the [`description` field](Model#structfield.description) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn description_as_null(self) -> ModelBuilder<(T0, T1, T2, ())> {
                self.description(())
            }
        }

        impl<T0, T1, T2, T3> ModelBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`buffers` field](Model#structfield.buffers).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffers<T4>(self, value: T4) -> ModelBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Buffer>]>>,
            {
                let (v0, v1, v2, v3) = self.0;
                ModelBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`buffers` field](Model#structfield.buffers) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffers_as_null(self) -> ModelBuilder<(T0, T1, T2, T3, ())> {
                self.buffers(())
            }
        }

        impl<T0, T1, T2, T3, T4> ModelBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`metadata_buffer` field](Model#structfield.metadata_buffer).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn metadata_buffer<T5>(self, value: T5) -> ModelBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                ModelBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`metadata_buffer` field](Model#structfield.metadata_buffer) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn metadata_buffer_as_null(self) -> ModelBuilder<(T0, T1, T2, T3, T4, ())> {
                self.metadata_buffer(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5> ModelBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Setter for the [`metadata` field](Model#structfield.metadata).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn metadata<T6>(self, value: T6) -> ModelBuilder<(T0, T1, T2, T3, T4, T5, T6)>
            where
                T6: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Metadata>]>>,
            {
                let (v0, v1, v2, v3, v4, v5) = self.0;
                ModelBuilder((v0, v1, v2, v3, v4, v5, value))
            }

            /// Sets the [`metadata` field](Model#structfield.metadata) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn metadata_as_null(self) -> ModelBuilder<(T0, T1, T2, T3, T4, T5, ())> {
                self.metadata(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6> ModelBuilder<(T0, T1, T2, T3, T4, T5, T6)> {
            /// Setter for the [`signature_defs` field](Model#structfield.signature_defs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn signature_defs<T7>(
                self,
                value: T7,
            ) -> ModelBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
            where
                T7: ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::SignatureDef>]>,
                >,
            {
                let (v0, v1, v2, v3, v4, v5, v6) = self.0;
                ModelBuilder((v0, v1, v2, v3, v4, v5, v6, value))
            }

            /// Sets the [`signature_defs` field](Model#structfield.signature_defs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn signature_defs_as_null(self) -> ModelBuilder<(T0, T1, T2, T3, T4, T5, T6, ())> {
                self.signature_defs(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6, T7> ModelBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Model].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model>
            where
                Self: ::planus::WriteAsOffset<Model>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::OperatorCode>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SubGraph>]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Buffer>]>>,
                T5: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T6: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Metadata>]>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SignatureDef>]>>,
            > ::planus::WriteAs<::planus::Offset<Model>>
            for ModelBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
        {
            type Prepared = ::planus::Offset<Model>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::OperatorCode>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SubGraph>]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Buffer>]>>,
                T5: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T6: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Metadata>]>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SignatureDef>]>>,
            > ::planus::WriteAsOptional<::planus::Offset<Model>>
            for ModelBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
        {
            type Prepared = ::planus::Offset<Model>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Model>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::OperatorCode>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SubGraph>]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Buffer>]>>,
                T5: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T6: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Metadata>]>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SignatureDef>]>>,
            > ::planus::WriteAsOffset<Model> for ModelBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model> {
                let (v0, v1, v2, v3, v4, v5, v6, v7) = &self.0;
                Model::create(builder, v0, v1, v2, v3, v4, v5, v6, v7)
            }
        }

        /// Reference to a deserialized [Model].
        #[derive(Copy, Clone)]
        pub struct ModelRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> ModelRef<'a> {
            /// Getter for the [`version` field](Model#structfield.version).
            #[inline]
            pub fn version(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(self.0.access(0, "Model", "version")?.unwrap_or(0))
            }

            /// Getter for the [`operator_codes` field](Model#structfield.operator_codes).
            #[inline]
            pub fn operator_codes(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::OperatorCodeRef<'a>>>,
                >,
            > {
                self.0.access(1, "Model", "operator_codes")
            }

            /// Getter for the [`subgraphs` field](Model#structfield.subgraphs).
            #[inline]
            pub fn subgraphs(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::SubGraphRef<'a>>>,
                >,
            > {
                self.0.access(2, "Model", "subgraphs")
            }

            /// Getter for the [`description` field](Model#structfield.description).
            #[inline]
            pub fn description(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(3, "Model", "description")
            }

            /// Getter for the [`buffers` field](Model#structfield.buffers).
            #[inline]
            pub fn buffers(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<::planus::Vector<'a, ::planus::Result<self::BufferRef<'a>>>>,
            > {
                self.0.access(4, "Model", "buffers")
            }

            /// Getter for the [`metadata_buffer` field](Model#structfield.metadata_buffer).
            #[inline]
            pub fn metadata_buffer(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(5, "Model", "metadata_buffer")
            }

            /// Getter for the [`metadata` field](Model#structfield.metadata).
            #[inline]
            pub fn metadata(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::MetadataRef<'a>>>,
                >,
            > {
                self.0.access(6, "Model", "metadata")
            }

            /// Getter for the [`signature_defs` field](Model#structfield.signature_defs).
            #[inline]
            pub fn signature_defs(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::SignatureDefRef<'a>>>,
                >,
            > {
                self.0.access(7, "Model", "signature_defs")
            }
        }

        impl<'a> ::core::fmt::Debug for ModelRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("ModelRef");
                f.field("version", &self.version());
                if let ::core::option::Option::Some(field_operator_codes) =
                    self.operator_codes().transpose()
                {
                    f.field("operator_codes", &field_operator_codes);
                }
                if let ::core::option::Option::Some(field_subgraphs) = self.subgraphs().transpose()
                {
                    f.field("subgraphs", &field_subgraphs);
                }
                if let ::core::option::Option::Some(field_description) =
                    self.description().transpose()
                {
                    f.field("description", &field_description);
                }
                if let ::core::option::Option::Some(field_buffers) = self.buffers().transpose() {
                    f.field("buffers", &field_buffers);
                }
                if let ::core::option::Option::Some(field_metadata_buffer) =
                    self.metadata_buffer().transpose()
                {
                    f.field("metadata_buffer", &field_metadata_buffer);
                }
                if let ::core::option::Option::Some(field_metadata) = self.metadata().transpose() {
                    f.field("metadata", &field_metadata);
                }
                if let ::core::option::Option::Some(field_signature_defs) =
                    self.signature_defs().transpose()
                {
                    f.field("signature_defs", &field_signature_defs);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<ModelRef<'a>> for Model {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: ModelRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    version: ::core::convert::TryInto::try_into(value.version()?)?,
                    operator_codes: if let ::core::option::Option::Some(operator_codes) =
                        value.operator_codes()?
                    {
                        ::core::option::Option::Some(operator_codes.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    subgraphs: if let ::core::option::Option::Some(subgraphs) = value.subgraphs()? {
                        ::core::option::Option::Some(subgraphs.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    description: value.description()?.map(::core::convert::Into::into),
                    buffers: if let ::core::option::Option::Some(buffers) = value.buffers()? {
                        ::core::option::Option::Some(buffers.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    metadata_buffer: if let ::core::option::Option::Some(metadata_buffer) =
                        value.metadata_buffer()?
                    {
                        ::core::option::Option::Some(metadata_buffer.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    metadata: if let ::core::option::Option::Some(metadata) = value.metadata()? {
                        ::core::option::Option::Some(metadata.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    signature_defs: if let ::core::option::Option::Some(signature_defs) =
                        value.signature_defs()?
                    {
                        ::core::option::Option::Some(signature_defs.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for ModelRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for ModelRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[ModelRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Model>> for Model {
            type Value = ::planus::Offset<Model>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Model>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for ModelRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[ModelRef]", "read_as_root", 0)
                })
            }
        }
    }
}
