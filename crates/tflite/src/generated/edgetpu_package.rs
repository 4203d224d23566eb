pub use root::*;

const _: () = ::planus::check_version_compatibility("planus-1.3.0");

/// The root namespace
///
/// Generated from these locations:
/// * File `schema/edgetpu_package.fbs`
#[no_implicit_prelude]
#[allow(clippy::needless_lifetimes)]
mod root {
    /// The namespace `edgetpu`
    ///
    /// Generated from these locations:
    /// * File `schema/edgetpu_package.fbs`
    pub mod edgetpu {
        /// The table `Package` in the namespace `edgetpu`
        ///
        /// Generated from these locations:
        /// * Table `Package` in the file `schema/edgetpu_package.fbs:11`
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
        pub struct Package {
            ///  The oldest Edge TPU runtime that can run this package.
            pub min_runtime_version: i32,
            /// The field `serialized_multi_executable` in the table `Package`
            pub serialized_multi_executable: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
            /// The field `signature` in the table `Package`
            pub signature: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
            /// The field `keypair_version` in the table `Package`
            pub keypair_version: i32,
            ///  The DarwiNN compiler version that produced the package.
            pub compiler_version: ::core::option::Option<::planus::alloc::string::String>,
            ///  0 for a single-chip package, -1 for a multi-chip package.
            pub virtual_chip_id: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Package {
            fn default() -> Self {
                Self {
                    min_runtime_version: 0,
                    serialized_multi_executable: ::core::default::Default::default(),
                    signature: ::core::default::Default::default(),
                    keypair_version: 0,
                    compiler_version: ::core::default::Default::default(),
                    virtual_chip_id: 0,
                }
            }
        }

        impl Package {
            /// Creates a [PackageBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> PackageBuilder<()> {
                PackageBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_min_runtime_version: impl ::planus::WriteAsDefault<i32, i32>,
                field_serialized_multi_executable: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[u8]>,
                >,
                field_signature: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                field_keypair_version: impl ::planus::WriteAsDefault<i32, i32>,
                field_compiler_version: impl ::planus::WriteAsOptional<
                    ::planus::Offset<::core::primitive::str>,
                >,
                field_virtual_chip_id: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_min_runtime_version = field_min_runtime_version.prepare(builder, &0);
                let prepared_serialized_multi_executable =
                    field_serialized_multi_executable.prepare(builder);
                let prepared_signature = field_signature.prepare(builder);
                let prepared_keypair_version = field_keypair_version.prepare(builder, &0);
                let prepared_compiler_version = field_compiler_version.prepare(builder);
                let prepared_virtual_chip_id = field_virtual_chip_id.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<16> =
                    ::core::default::Default::default();
                if prepared_min_runtime_version.is_some() {
                    table_writer.write_entry::<i32>(0);
                }
                if prepared_serialized_multi_executable.is_some() {
                    table_writer.write_entry::<::planus::Offset<[u8]>>(1);
                }
                if prepared_signature.is_some() {
                    table_writer.write_entry::<::planus::Offset<[u8]>>(2);
                }
                if prepared_keypair_version.is_some() {
                    table_writer.write_entry::<i32>(3);
                }
                if prepared_compiler_version.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(4);
                }
                if prepared_virtual_chip_id.is_some() {
                    table_writer.write_entry::<i32>(5);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_min_runtime_version) =
                            prepared_min_runtime_version
                        {
                            object_writer.write::<_, _, 4>(&prepared_min_runtime_version);
                        }
                        if let ::core::option::Option::Some(prepared_serialized_multi_executable) =
                            prepared_serialized_multi_executable
                        {
                            object_writer.write::<_, _, 4>(&prepared_serialized_multi_executable);
                        }
                        if let ::core::option::Option::Some(prepared_signature) = prepared_signature
                        {
                            object_writer.write::<_, _, 4>(&prepared_signature);
                        }
                        if let ::core::option::Option::Some(prepared_keypair_version) =
                            prepared_keypair_version
                        {
                            object_writer.write::<_, _, 4>(&prepared_keypair_version);
                        }
                        if let ::core::option::Option::Some(prepared_compiler_version) =
                            prepared_compiler_version
                        {
                            object_writer.write::<_, _, 4>(&prepared_compiler_version);
                        }
                        if let ::core::option::Option::Some(prepared_virtual_chip_id) =
                            prepared_virtual_chip_id
                        {
                            object_writer.write::<_, _, 4>(&prepared_virtual_chip_id);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Package>> for Package {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Package> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Package>> for Package {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Package>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Package> for Package {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Package> {
                Package::create(
                    builder,
                    self.min_runtime_version,
                    &self.serialized_multi_executable,
                    &self.signature,
                    self.keypair_version,
                    &self.compiler_version,
                    self.virtual_chip_id,
                )
            }
        }

        /// Builder for serializing an instance of the [Package] type.
        ///
        /// Can be created using the [Package::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct PackageBuilder<State>(State);

        impl PackageBuilder<()> {
            /// Setter for the [`min_runtime_version` field](Package#structfield.min_runtime_version).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn min_runtime_version<T0>(self, value: T0) -> PackageBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i32, i32>,
            {
                PackageBuilder((value,))
            }

            /// Sets the [`min_runtime_version` field](Package#structfield.min_runtime_version) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn min_runtime_version_as_default(
                self,
            ) -> PackageBuilder<(::planus::DefaultValue,)> {
                self.min_runtime_version(::planus::DefaultValue)
            }
        }

        impl<T0> PackageBuilder<(T0,)> {
            /// Setter for the [`serialized_multi_executable` field](Package#structfield.serialized_multi_executable).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn serialized_multi_executable<T1>(self, value: T1) -> PackageBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            {
                let (v0,) = self.0;
                PackageBuilder((v0, value))
            }

            /// Sets the [`serialized_multi_executable` field](Package#structfield.serialized_multi_executable) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn serialized_multi_executable_as_null(self) -> PackageBuilder<(T0, ())> {
                self.serialized_multi_executable(())
            }
        }

        impl<T0, T1> PackageBuilder<(T0, T1)> {
            /// Setter for the [`signature` field](Package#structfield.signature).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn signature<T2>(self, value: T2) -> PackageBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            {
                let (v0, v1) = self.0;
                PackageBuilder((v0, v1, value))
            }

            /// Sets the [`signature` field](Package#structfield.signature) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn signature_as_null(self) -> PackageBuilder<(T0, T1, ())> {
                self.signature(())
            }
        }

        impl<T0, T1, T2> PackageBuilder<(T0, T1, T2)> {
            /// Setter for the [`keypair_version` field](Package#structfield.keypair_version).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn keypair_version<T3>(self, value: T3) -> PackageBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2) = self.0;
                PackageBuilder((v0, v1, v2, value))
            }

            /// Sets the [`keypair_version` field](Package#structfield.keypair_version) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn keypair_version_as_default(
                self,
            ) -> PackageBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.keypair_version(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> PackageBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`compiler_version` field](Package#structfield.compiler_version).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn compiler_version<T4>(self, value: T4) -> PackageBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0, v1, v2, v3) = self.0;
                PackageBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`compiler_version` field](Package#structfield.compiler_version) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn compiler_version_as_null(self) -> PackageBuilder<(T0, T1, T2, T3, ())> {
                self.compiler_version(())
            }
        }

        impl<T0, T1, T2, T3, T4> PackageBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`virtual_chip_id` field](Package#structfield.virtual_chip_id).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn virtual_chip_id<T5>(self, value: T5) -> PackageBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                PackageBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`virtual_chip_id` field](Package#structfield.virtual_chip_id) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn virtual_chip_id_as_default(
                self,
            ) -> PackageBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)> {
                self.virtual_chip_id(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> PackageBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Package].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Package>
            where
                Self: ::planus::WriteAsOffset<Package>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i32, i32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAs<::planus::Offset<Package>>
            for PackageBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<Package>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Package> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i32, i32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOptional<::planus::Offset<Package>>
            for PackageBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<Package>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Package>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i32, i32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T3: ::planus::WriteAsDefault<i32, i32>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOffset<Package> for PackageBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Package> {
                let (v0, v1, v2, v3, v4, v5) = &self.0;
                Package::create(builder, v0, v1, v2, v3, v4, v5)
            }
        }

        /// Reference to a deserialized [Package].
        #[derive(Copy, Clone)]
        pub struct PackageRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> PackageRef<'a> {
            /// Getter for the [`min_runtime_version` field](Package#structfield.min_runtime_version).
            #[inline]
            pub fn min_runtime_version(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "Package", "min_runtime_version")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`serialized_multi_executable` field](Package#structfield.serialized_multi_executable).
            #[inline]
            pub fn serialized_multi_executable(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                self.0.access(1, "Package", "serialized_multi_executable")
            }

            /// Getter for the [`signature` field](Package#structfield.signature).
            #[inline]
            pub fn signature(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                self.0.access(2, "Package", "signature")
            }

            /// Getter for the [`keypair_version` field](Package#structfield.keypair_version).
            #[inline]
            pub fn keypair_version(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(3, "Package", "keypair_version")?.unwrap_or(0),
                )
            }

            /// Getter for the [`compiler_version` field](Package#structfield.compiler_version).
            #[inline]
            pub fn compiler_version(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(4, "Package", "compiler_version")
            }

            /// Getter for the [`virtual_chip_id` field](Package#structfield.virtual_chip_id).
            #[inline]
            pub fn virtual_chip_id(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(5, "Package", "virtual_chip_id")?.unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for PackageRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("PackageRef");
                f.field("min_runtime_version", &self.min_runtime_version());
                if let ::core::option::Option::Some(field_serialized_multi_executable) =
                    self.serialized_multi_executable().transpose()
                {
                    f.field(
                        "serialized_multi_executable",
                        &field_serialized_multi_executable,
                    );
                }
                if let ::core::option::Option::Some(field_signature) = self.signature().transpose()
                {
                    f.field("signature", &field_signature);
                }
                f.field("keypair_version", &self.keypair_version());
                if let ::core::option::Option::Some(field_compiler_version) =
                    self.compiler_version().transpose()
                {
                    f.field("compiler_version", &field_compiler_version);
                }
                f.field("virtual_chip_id", &self.virtual_chip_id());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<PackageRef<'a>> for Package {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: PackageRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    min_runtime_version: ::core::convert::TryInto::try_into(
                        value.min_runtime_version()?,
                    )?,
                    serialized_multi_executable: value
                        .serialized_multi_executable()?
                        .map(|v| v.to_vec()),
                    signature: value.signature()?.map(|v| v.to_vec()),
                    keypair_version: ::core::convert::TryInto::try_into(value.keypair_version()?)?,
                    compiler_version: value.compiler_version()?.map(::core::convert::Into::into),
                    virtual_chip_id: ::core::convert::TryInto::try_into(value.virtual_chip_id()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for PackageRef<'a> {
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

        impl<'a> ::planus::VectorReadInner<'a> for PackageRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[PackageRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Package>> for Package {
            type Value = ::planus::Offset<Package>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Package>],
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

        impl<'a> ::planus::ReadAsRoot<'a> for PackageRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[PackageRef]", "read_as_root", 0)
                })
            }
        }
    }
}
